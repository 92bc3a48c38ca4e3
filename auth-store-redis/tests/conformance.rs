//! The shared conformance suite against a real Redis (`REDIS_URL`): counters,
//! sessions (with their user snapshots) and challenges on Redis, and the engine
//! checks over Redis counters, sessions (snapshots on) and challenges with users, credentials, tokens and audit in memory.
//! Each test runs under its own key prefix, deleted afterwards. Without
//! `REDIS_URL` the tests skip, unless `CI=true`, where they fail.

mod support;

auth_core::attempt_store_tests!(match support::attempts().await {
    Some(store) => store,
    None => return,
});

auth_core::session_store_tests!(match support::sessions().await {
    Some(store) => store,
    None => return,
});

auth_core::session_cache_tests!(match support::sessions().await {
    Some(store) => store,
    None => return,
});

auth_core::challenge_store_tests!(match support::challenges().await {
    Some(store) => store,
    None => return,
});

auth_core::engine_conformance_tests!(match support::bundle().await {
    Some(stores) => stores,
    None => return,
});
