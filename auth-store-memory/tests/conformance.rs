//! The shared conformance suite against the in-process store.

auth_core::store_conformance_tests!(auth_store_memory::MemoryStore::new());
