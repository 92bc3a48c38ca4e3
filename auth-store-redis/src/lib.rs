#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod agent;
mod attempts;
mod challenges;
mod codec;
mod conn;
mod keys;
mod record;
mod sessions;

pub use attempts::{RedisAttemptStore, UnavailablePolicy};
pub use challenges::RedisChallengeStore;
pub use conn::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_OPERATION_TIMEOUT,
    DEFAULT_RESPONSE_TIMEOUT, RedisConfig, RedisConnection,
};
pub use sessions::RedisSessionStore;
