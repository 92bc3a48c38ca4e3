//! Cleanup in bounded batches: `purge_expired` on a table of millions of dead
//! rows deletes them a batch per statement, each its own short transaction,
//! so request paths never wait behind one long delete, the WAL and the
//! row locks stay small, and autovacuum keeps up meanwhile.

use sqlx::SqlStr;
use time::OffsetDateTime;

use crate::PgStore;
use auth_core::store::StoreError;

/// Rows one cleanup statement deletes at most, unless
/// [`PgStore::purge_batch_size`] says otherwise.
pub(crate) const DEFAULT_BATCH: u32 = 5_000;

/// Heap pages per batch of the sessions sweep: about 50 session rows fit a
/// page, so this many pages hold about a batch of rows.
const ROWS_PER_PAGE: u32 = 50;

impl PgStore {
    /// The most rows one cleanup statement deletes (at least 1; default
    /// 5,000). The `delete_expired_*` calls and audit retention loop over
    /// batches of this size until none is left, each batch a statement of
    /// its own, so a purge of millions of rows holds no lock or transaction
    /// for long.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), auth_core::store::StoreError> {
    /// use auth_store_postgres::PgStore;
    ///
    /// let store = PgStore::connect("postgres://localhost/app").await?.purge_batch_size(1_000);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn purge_batch_size(mut self, rows: u32) -> Self {
        self.purge_batch = rows.max(1);
        self
    }

    /// Runs `statement` (binds: `before`, the batch size; it deletes at most
    /// that many rows whose deadline is before `before`) until a batch comes
    /// back short. Returns how many rows went.
    pub(crate) async fn delete_in_batches(
        &self,
        statement: &SqlStr,
        before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let batch = u64::from(self.purge_batch);
        let mut deleted = 0;
        loop {
            let done = self
                .run(
                    sqlx::query(statement.clone())
                        .bind(before)
                        .bind(i64::from(self.purge_batch))
                        .execute(&self.pool),
                )
                .await?
                .rows_affected();
            deleted += done;
            if done < batch {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// As [`Self::delete_in_batches`] for a statement that returns the
    /// deleted rows' ids.
    pub(crate) async fn delete_ids_in_batches(
        &self,
        statement: &SqlStr,
        before: OffsetDateTime,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let batch = usize::try_from(self.purge_batch).unwrap_or(usize::MAX);
        let mut deleted = Vec::new();
        loop {
            let ids: Vec<uuid::Uuid> = self
                .run(
                    sqlx::query_scalar(statement.clone())
                        .bind(before)
                        .bind(i64::from(self.purge_batch))
                        .fetch_all(&self.pool),
                )
                .await?;
            let short = ids.len() < batch;
            deleted.extend(ids);
            if short {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Sweeps the heap of a table that has no index on its deadlines
    /// (sessions: indexing `idle_expires_at`, which every touch moves, would
    /// make each touch update every index) in ranges of pages, one statement
    /// per range (binds: `before`, first page, page after the last), so the
    /// whole sweep reads the table once. `table` answers the table's pages
    /// and the server's version: before PostgreSQL 14 (no TID range scans)
    /// the sweep is one statement.
    pub(crate) async fn delete_by_page_ranges(
        &self,
        table: &SqlStr,
        statement: &SqlStr,
        before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let (pages, version): (i64, i32) = self
            .run(sqlx::query_as(table.clone()).fetch_one(&self.pool))
            .await?;
        // Before PostgreSQL 14 a TID range is no scan of its own: each range
        // would read the whole table, so the sweep is one statement there.
        let step = if version < 140_000 {
            pages.max(1)
        } else {
            i64::from((self.purge_batch / ROWS_PER_PAGE).max(1))
        };
        let mut deleted = 0;
        let mut first = 0_i64;
        while first < pages {
            deleted += self
                .run(
                    sqlx::query(statement.clone())
                        .bind(before)
                        .bind(first)
                        .bind(first + step)
                        .execute(&self.pool),
                )
                .await?
                .rows_affected();
            first += step;
            tokio::task::yield_now().await;
        }
        Ok(deleted)
    }
}
