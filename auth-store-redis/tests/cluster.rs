//! The stores on a real Redis Cluster (feature `cluster`): three throwaway
//! primaries on free ports, joined with `redis-cli --cluster create`. Redis
//! Cluster refuses any command or script whose keys span slots, so every check
//! passing here shows the hash tags hold; the purge shows the scan of every
//! primary. Skipped without `redis-server`/`redis-cli`, failing in CI.

#![cfg(feature = "cluster")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use auth_core::TokenHash;
use auth_core::conformance::{self, Stores, t0};
use auth_core::store::{AuthMethod, SessionId, SessionRecord, SessionStore, UserId};
use auth_store_memory::MemoryStore;
use auth_store_redis::{
    RedisAttemptStore, RedisChallengeStore, RedisConfig, RedisConnection, RedisSessionStore,
};
use support::Server;
use time::Duration;

struct Cluster {
    nodes: Vec<Server>,
}

impl Cluster {
    fn start() -> Option<Self> {
        if !support::have_redis_server() {
            return None;
        }
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        let nodes: Vec<Server> = (0..3).map(|_| Server::start(&args)).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "redis-cli --cluster create failed"
        );
        let deadline = Instant::now() + StdDuration::from_secs(20);
        for node in &nodes {
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node.admin())
                    .unwrap();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not form: {info}"
                );
                std::thread::sleep(StdDuration::from_millis(50));
            }
        }
        Some(Self { nodes })
    }

    fn connect(&self) -> RedisConnection {
        RedisConfig::cluster(self.nodes.iter().map(Server::url))
            .key_prefix(support::fresh_prefix())
            .operation_timeout(StdDuration::from_secs(5))
            .build()
            .unwrap()
    }

    fn bundle(&self) -> Stores {
        let conn = self.connect();
        let db = Arc::new(MemoryStore::new());
        let sessions = Arc::new(RedisSessionStore::new(conn.clone()));
        Stores {
            users: db.clone(),
            accounts: Some(db.clone()),
            passwords: db.clone(),
            totp: db.clone(),
            recovery_codes: db.clone(),
            tokens: db.clone(),
            audit: db.clone(),
            roles: db,
            sessions: sessions.clone(),
            session_cache: Some(sessions),
            challenges: Arc::new(RedisChallengeStore::new(conn.clone())),
            attempts: Arc::new(RedisAttemptStore::new(conn)),
        }
    }
}

/// Runs conformance checks of `$module`, each on a fresh key prefix.
macro_rules! checks {
    ($module:ident, $make:expr, [$($case:ident),* $(,)?]) => {
        $(
            let store = Arc::new($make);
            conformance::$module::$case(conformance::$module::fixture(store, None)).await;
        )*
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stores_work_on_a_redis_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    cluster.connect().ping().await.unwrap();

    checks!(
        attempts,
        RedisAttemptStore::new(cluster.connect()),
        [
            increment_counts_and_records_the_time,
            fifty_concurrent_increments_count_fifty,
            counters_expire_ttl_after_the_last_increment,
            clear_resets_to_zero,
            keys_are_independent,
            delete_expired_forgets_only_expired_counters,
            counters_read_together_read_as_each_alone,
        ]
    );
    checks!(
        sessions,
        RedisSessionStore::new(cluster.connect()),
        [
            create_and_find_by_token,
            touch_records_activity,
            touch_never_revives_a_revoked_session,
            revoke_one_is_scoped_to_its_owner,
            revoke_all_but_the_current_one,
            list_shows_active_sessions_newest_first,
            delete_expired_keeps_live_sessions,
            revoke_all_racing_touches_leaves_no_usable_session,
            creating_a_session_counts_the_users_active_sessions,
        ]
    );
    checks!(
        session_cache,
        RedisSessionStore::new(cluster.connect()),
        [
            snapshots_are_kept_with_their_session,
            a_put_with_an_old_stamp_is_refused,
            invalidation_reaches_every_session_of_the_user_only,
            revoked_sessions_keep_no_snapshot,
            a_stale_snapshot_can_never_outlive_the_change,
        ]
    );
    checks!(
        challenges,
        RedisChallengeStore::new(cluster.connect()),
        [
            take_once_with_payload,
            challenges_are_purpose_bound,
            valid_at_the_deadline_and_not_after,
            fifty_concurrent_takes_have_one_winner,
        ]
    );
    conformance::engine::full_journey(cluster.bundle()).await;
    let h = conformance::Harness::new(cluster.bundle());
    h.verified_user("stuffed@example.com", "purple otter sings")
        .await;
    conformance::engine::concurrent_failed_logins_lock_every_engine(
        &[&h],
        "stuffed@example.com",
        "purple otter sings",
    )
    .await;
    conformance::engine::revoke_all_racing_authenticate_leaves_no_usable_session(cluster.bundle())
        .await;
    conformance::engine::change_rotates_the_session_and_revokes_the_others(cluster.bundle()).await;
    conformance::engine::idle_timeout_and_touch(cluster.bundle()).await;
    conformance::engine::totp_sign_in_journey(cluster.bundle()).await;
    conformance::engine::second_factor_challenges_expire_and_bind_the_password(cluster.bundle())
        .await;
}

/// The purge scans every primary: sessions of many users (spread over the nodes)
/// are all found and deleted, pointers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_purge_reaches_every_node_of_a_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = RedisSessionStore::new(cluster.connect());
    let mut sessions = Vec::new();
    for n in 0..40_u8 {
        let s = SessionRecord {
            id: SessionId::new_random(),
            token_hash: TokenHash([n; 32]),
            user_id: UserId::new_random(),
            created_at: t0(),
            authenticated_at: t0(),
            methods: vec![AuthMethod::Password],
            last_seen_at: t0(),
            idle_expires_at: t0() + Duration::minutes(30),
            absolute_expires_at: t0() + Duration::hours(24),
            revoked_at: None,
            ip: None,
            user_agent: None,
        };
        store.create_session(s.clone()).await.unwrap();
        sessions.push(s);
    }
    // Every node holds some of them.
    for node in &cluster.nodes {
        let keys: i64 = redis::cmd("DBSIZE").query(&mut node.admin()).unwrap();
        assert!(keys > 0, "node {} holds nothing", node.port);
    }
    assert_eq!(store.delete_expired_sessions(t0()).await.unwrap(), 0);
    let later = t0() + Duration::hours(1);
    assert_eq!(store.delete_expired_sessions(later).await.unwrap(), 40);
    for s in &sessions {
        assert_eq!(store.session_by_token(&s.token_hash).await.unwrap(), None);
    }
    for node in &cluster.nodes {
        let keys: i64 = redis::cmd("DBSIZE").query(&mut node.admin()).unwrap();
        assert_eq!(keys, 0, "node {} kept keys", node.port);
    }
}
