//! `tc_store_redis_open`, `tc_store_redis_cluster_open` and `tc_redis_options`: the
//! distributed L2, in Redis or Redis Cluster, over pooled connections.

use std::ffi::c_char;
use std::time::Duration;

use crate::arguments::{try_bytes, try_str, try_str_list};
use crate::handle::{Castable, OwnershipBox, free_box, to_arc_const_ptr, to_boxed_mut_ptr, try_mut_from_ptr, try_out};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};
use crate::store::tc_store;

/// Options of a Redis store. A new one holds the defaults: key prefix
/// `"tokencache:"`, at most 16 connections, connect, read and write timeouts of 1 s,
/// the system's TLS roots for `rediss://`.
///
/// Ownership: `tc_redis_options_new` creates one; the caller owns it and releases it
/// with `tc_redis_options_free`. The store constructors copy it.
///
/// Thread-safety: not synchronized; use one from one thread at a time.
///
/// Methods: `tc_redis_options_new`, `tc_redis_options_free`,
/// `tc_redis_options_set_key_prefix`, `tc_redis_options_set_max_connections`,
/// `tc_redis_options_set_timeouts`, `tc_redis_options_set_tls_root_certificates`.
pub struct tc_redis_options {
    _private: [u8; 0],
}

/// What `tc_redis_options` holds; turned into core's `RedisOptions` when a store opens
/// (this type exists in builds without the `redis` feature too).
#[derive(Clone, Debug)]
pub(crate) struct RedisSettings {
    key_prefix: String,
    max_connections: u32,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    tls_root_certificates_pem: Option<Vec<u8>>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            key_prefix: "tokencache:".into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            tls_root_certificates_pem: None,
        }
    }
}

impl Castable for tc_redis_options {
    type Ownership = OwnershipBox;
    type RustType = RedisSettings;
}

/// Creates Redis options holding the defaults and writes them to `*options_out`. The
/// caller owns them and must release them with `tc_redis_options_free`.
///
/// # Safety
/// `options_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_new(options_out: *mut *mut tc_redis_options) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(options_out);
        out.write(to_boxed_mut_ptr(RedisSettings::default()));
        tc_result::Ok
    }
}

/// Releases Redis options. `NULL` is a no-op.
///
/// # Safety
/// `options` must be NULL or options from `tc_redis_options_new` not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_free(options: *mut tc_redis_options) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or options it owns and gives up here.
        unsafe { free_box(options) }
    }
}

/// Prepended to every key, e.g. `"myapp:tokens:"`. It must not contain `{` or `}`
/// (they would make it the cluster hash tag): the store constructors reject that with
/// `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread; `prefix` NULL
/// or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_set_key_prefix(
    options: *mut tc_redis_options,
    prefix: *const c_char,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.key_prefix = try_str!(prefix).to_owned();
        tc_result::Ok
    }
}

/// Most connections open at once; must be positive.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_set_max_connections(options: *mut tc_redis_options, max: u32) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        if max == 0 {
            return Failure::new(tc_result::InvalidArgument, "`max` must be positive").record();
        }
        options.max_connections = max;
        tc_result::Ok
    }
}

/// Bounds, in milliseconds, on establishing a connection (and waiting for a pooled
/// one), on waiting for a reply, and on sending a request; each must be positive.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_set_timeouts(
    options: *mut tc_redis_options,
    connect_ms: u64,
    read_ms: u64,
    write_ms: u64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        if connect_ms == 0 || read_ms == 0 || write_ms == 0 {
            return Failure::new(tc_result::InvalidArgument, "timeouts must be positive").record();
        }
        options.connect_timeout = Duration::from_millis(connect_ms);
        options.read_timeout = Duration::from_millis(read_ms);
        options.write_timeout = Duration::from_millis(write_ms);
        tc_result::Ok
    }
}

/// For `rediss://`: trust the CA certificate(s) in `pem` (`pem_len` bytes of PEM)
/// instead of the system's roots, as private CAs of managed Redis services need.
/// `(NULL, 0)` goes back to the system's roots. The bytes are copied.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread; `pem` NULL or
/// readable for `pem_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_redis_options_set_tls_root_certificates(
    options: *mut tc_redis_options,
    pem: *const u8,
    pem_len: usize,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        let pem = try_bytes!(pem, pem_len);
        options.tls_root_certificates_pem = (!pem.is_empty()).then(|| pem.to_vec());
        tc_result::Ok
    }
}

/// Options as given, or the defaults for NULL.
///
/// # Safety
/// `options` is NULL or live options.
unsafe fn settings(options: *const tc_redis_options) -> RedisSettings {
    // SAFETY: the caller's promise.
    unsafe { crate::handle::try_from(options, "options") }.map_or_else(|_| RedisSettings::default(), Clone::clone)
}

/// Connects to the Redis server at `url` (`redis://[user:password@]host:port[/db]`, or
/// `rediss://` for TLS) and writes a store over it to `*store_out`. Partitions go under
/// `<prefix>{<partition key>}` with a TTL from their expiry. `options` is NULL for the
/// defaults, else copied.
///
/// Connections are made when needed: a server that can't be reached fails the
/// operations that need it with `TC_RESULT_STORE_UNAVAILABLE` (the message names the
/// URL without its password). A malformed URL is `TC_RESULT_INVALID_ARGUMENT`;
/// `TC_RESULT_UNSUPPORTED` in a build without the `redis` feature (or `redis-tls`, for
/// `rediss://`).
///
/// The caller owns the store and must release it with `tc_store_free`.
///
/// # Safety
/// `url` must be NULL or NUL-terminated; `options` NULL or live options not being
/// changed by another thread; `store_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_redis_open(
    url: *const c_char,
    options: *const tc_redis_options,
    store_out: *mut *const tc_store,
) -> tc_result {
    ffi_panic_boundary! {
        let url = try_str!(url);
        // SAFETY: documented above.
        let settings = unsafe { settings(options) };
        let out = try_out!(store_out);
        out.write(to_arc_const_ptr(try_result!(open::single(url, settings))));
        tc_result::Ok
    }
}

/// As `tc_store_redis_open`, for a Redis Cluster: `node_urls` lists `node_urls_len`
/// URLs of some of its nodes (the rest are discovered). Each partition's keys stay in
/// one slot (the partition key is the hash tag).
///
/// # Safety
/// `node_urls` must be NULL or readable for `node_urls_len` NUL-terminated strings;
/// `options` NULL or live options; `store_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_redis_cluster_open(
    node_urls: *const *const c_char,
    node_urls_len: usize,
    options: *const tc_redis_options,
    store_out: *mut *const tc_store,
) -> tc_result {
    ffi_panic_boundary! {
        let nodes = try_str_list!(node_urls, node_urls_len);
        // SAFETY: documented above.
        let settings = unsafe { settings(options) };
        let out = try_out!(store_out);
        if nodes.is_empty() {
            return Failure::new(tc_result::InvalidArgument, "`node_urls` is empty").record();
        }
        out.write(to_arc_const_ptr(try_result!(open::cluster(&nodes, settings))));
        tc_result::Ok
    }
}

#[cfg(feature = "redis")]
mod open {
    use std::sync::Arc;

    use tokencache_core::store::{RedisOptions, RedisStore};

    use super::RedisSettings;
    use crate::result::Failure;
    use crate::store::{Layer, StoreHandle};

    fn options(s: RedisSettings) -> RedisOptions {
        RedisOptions {
            key_prefix: s.key_prefix,
            max_connections: s.max_connections,
            connect_timeout: s.connect_timeout,
            read_timeout: s.read_timeout,
            write_timeout: s.write_timeout,
            tls_root_certificates_pem: s.tls_root_certificates_pem,
            ..RedisOptions::default()
        }
    }

    pub(super) fn single(url: &str, settings: RedisSettings) -> Result<StoreHandle, Failure> {
        let store = Arc::new(RedisStore::open(url, options(settings))?);
        Ok(StoreHandle::l2(store.clone(), Layer::Redis, None).with_leases(store))
    }

    pub(super) fn cluster(nodes: &[&str], settings: RedisSettings) -> Result<StoreHandle, Failure> {
        let store = Arc::new(RedisStore::open_cluster(nodes.iter().copied(), options(settings))?);
        Ok(StoreHandle::l2(store.clone(), Layer::Redis, None).with_leases(store))
    }
}

#[cfg(not(feature = "redis"))]
mod open {
    use super::RedisSettings;
    use crate::result::Failure;
    use crate::store::StoreHandle;

    pub(super) fn single(_: &str, _: RedisSettings) -> Result<StoreHandle, Failure> {
        Err(Failure::not_built("redis"))
    }

    pub(super) fn cluster(_: &[&str], _: RedisSettings) -> Result<StoreHandle, Failure> {
        Err(Failure::not_built("redis"))
    }
}
