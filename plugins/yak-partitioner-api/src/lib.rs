//! The C ABI between a YaK producer (the host) and a partitioner plugin (a
//! `.so` loaded at run time), and the [`declare_partitioner!`] macro that
//! writes a plugin's side of it.
//!
//! # The ABI
//! A plugin exports one `extern "C"` symbol, [`TABLE_SYMBOL`]
//! (`yak_partitioner_table`): a function taking nothing and returning a
//! pointer to a static, `#[repr(C)]` [`PartitionerTable`]. The table's first
//! field is [`ABI_VERSION`]; the host reads that field alone, and nothing
//! else, unless it matches. Then it finds the strategy's name (pointer +
//! length, UTF-8) and three functions:
//! - `new(batch_bytes, seed, *mut state) -> status`: one instance per topic;
//! - `partition(state, key ptr, key len, key present, value len, in-flight
//!   ptr, partitions, *mut partition) -> status`: the key may be absent
//!   (`key_present == 0`); `in_flight[p]` is the number of records the
//!   producer has queued or sent to partition `p` and not yet seen
//!   acknowledged, one `u64` per partition;
//! - `free(state)`.
//!
//! Only integers and `pointer + length` cross the boundary; no Rust type
//! does. Statuses are [`STATUS_OK`], [`STATUS_PANIC`] (the strategy
//! panicked; the macro caught it) and [`STATUS_INVALID`] (the host passed a
//! null pointer or zero partitions). No panic unwinds across the boundary:
//! the macro wraps every call in `catch_unwind` (plugins must be built with
//! `panic = "unwind"`, Cargo's default). The host, not the plugin, checks
//! that the partition returned is below the partition count.
//!
//! A state is used by one thread at a time but may move between threads.
//!
//! # A minimal plugin
//! A `cdylib` crate depending on this one; its whole `src/lib.rs`:
//!
//! ```
//! use yak_partitioner_api::{declare_partitioner, Config, Message, Partitioner};
//!
//! /// Sends each message to the partition with the fewest unacknowledged
//! /// records; ties go to the lowest partition number.
//! pub struct Emptiest;
//!
//! impl Partitioner for Emptiest {
//!     fn new(_config: &Config) -> Self {
//!         Emptiest
//!     }
//!
//!     fn partition(&mut self, msg: &Message<'_>) -> u32 {
//!         let loads = msg.in_flight.iter().enumerate();
//!         loads.min_by_key(|&(_, n)| *n).map_or(0, |(p, _)| p as u32)
//!     }
//! }
//!
//! declare_partitioner!(Emptiest, "emptiest");
//! ```
//!
//! Build it with `cargo build --release` and pass
//! `--partitioner target/release/lib<crate>.so` to `yak-node produce`.
#![deny(missing_docs)]

use std::ffi::c_void;

pub mod helpers;
pub use helpers::{key_partition, murmur2, XorShift64};

/// The ABI version this crate speaks; a host refuses any other.
pub const ABI_VERSION: u32 = 1;
/// Name of the one symbol a plugin exports (a [`TableFn`]).
pub const TABLE_SYMBOL: &str = "yak_partitioner_table";
/// Longest strategy name a host accepts, in bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// The call succeeded.
pub const STATUS_OK: i32 = 0;
/// The strategy panicked; the panic was caught inside the plugin.
pub const STATUS_PANIC: i32 = 1;
/// The host passed a null pointer or zero partitions.
pub const STATUS_INVALID: i32 = 2;

/// Type of the exported [`TABLE_SYMBOL`].
pub type TableFn = unsafe extern "C" fn() -> *const PartitionerTable;
/// Creates a strategy instance: `(batch_bytes, seed, state_out) -> status`.
pub type NewFn = unsafe extern "C" fn(u64, u64, *mut *mut c_void) -> i32;
/// Picks a partition: `(state, key_ptr, key_len, key_present, value_len,
/// in_flight_ptr, partitions, partition_out) -> status`.
pub type PartitionFn = unsafe extern "C" fn(
    *mut c_void,
    *const u8,
    usize,
    u8,
    usize,
    *const u64,
    u32,
    *mut u32,
) -> i32;
/// Frees a strategy instance made by [`NewFn`].
pub type FreeFn = unsafe extern "C" fn(*mut c_void);

/// What a plugin's [`TABLE_SYMBOL`] points to.
#[repr(C)]
#[derive(Debug)]
pub struct PartitionerTable {
    /// [`ABI_VERSION`] of the crate the plugin was built with; always first.
    pub abi_version: u32,
    /// The strategy's name, UTF-8, not NUL-terminated.
    pub name_ptr: *const u8,
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Creates an instance.
    pub new: NewFn,
    /// Picks a partition.
    pub partition: PartitionFn,
    /// Frees an instance.
    pub free: FreeFn,
}

// SAFETY: a table is immutable and holds only function pointers and a
// pointer to a `&'static str`; sharing it between threads is sound.
unsafe impl Sync for PartitionerTable {}

/// Settings a strategy instance is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The producer's batch size in bytes (sticky strategies switch after it).
    pub batch_bytes: u64,
    /// A random seed chosen by the host for this instance.
    pub seed: u64,
}

/// One message to place.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The key, if the message has one.
    pub key: Option<&'a [u8]>,
    /// Length of the value in bytes.
    pub value_len: usize,
    /// Unacknowledged records per partition; its length is the partition
    /// count (at least 1).
    pub in_flight: &'a [u64],
}

impl Message<'_> {
    /// Number of partitions of the topic (at least 1).
    pub fn partitions(&self) -> u32 {
        self.in_flight.len() as u32
    }
}

/// A partitioning strategy. The host checks that the returned partition is
/// below [`Message::partitions`]; a panic is caught and reported.
pub trait Partitioner: Sized + 'static {
    /// Creates an instance (one per topic).
    fn new(config: &Config) -> Self;
    /// Picks a partition in `0..msg.partitions()`.
    fn partition(&mut self, msg: &Message<'_>) -> u32;
}

/// The plugin side of the ABI, used by [`declare_partitioner!`]. Not for
/// direct use.
#[doc(hidden)]
pub mod ffi {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::Once;

    static PANIC_HOOK: Once = Once::new();

    /// A caught panic prints one line (the host reports it too); the
    /// plugin's copy of std has its own hook, so the host's is untouched.
    fn install_panic_hook() {
        PANIC_HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let payload = info.payload();
                let msg = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(no message)");
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!("partitioner plugin panicked{at}: {msg}");
            }));
        });
    }

    /// [`NewFn`] for `P`.
    ///
    /// # Safety
    /// `state_out` is null or valid for one write.
    pub unsafe extern "C" fn new<P: Partitioner>(
        batch_bytes: u64,
        seed: u64,
        state_out: *mut *mut c_void,
    ) -> i32 {
        if state_out.is_null() {
            return STATUS_INVALID;
        }
        install_panic_hook();
        let config = Config { batch_bytes, seed };
        match catch_unwind(|| Box::new(P::new(&config))) {
            Ok(state) => {
                // SAFETY: `state_out` is non-null and the caller promises it is valid for a write.
                unsafe { state_out.write(Box::into_raw(state).cast::<c_void>()) };
                STATUS_OK
            }
            Err(_) => STATUS_PANIC,
        }
    }

    /// [`PartitionFn`] for `P`.
    ///
    /// # Safety
    /// `state` comes from [`new`] for the same `P` and is not used
    /// elsewhere during the call; `key_ptr` is valid for `key_len` bytes when
    /// `key_present != 0` and `key_len > 0`; `in_flight_ptr` is valid for
    /// `partitions` values; `partition_out` is null or valid for one write.
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn partition<P: Partitioner>(
        state: *mut c_void,
        key_ptr: *const u8,
        key_len: usize,
        key_present: u8,
        value_len: usize,
        in_flight_ptr: *const u64,
        partitions: u32,
        partition_out: *mut u32,
    ) -> i32 {
        let key_bad = key_present != 0 && key_len > 0 && key_ptr.is_null();
        if state.is_null()
            || partition_out.is_null()
            || in_flight_ptr.is_null()
            || partitions == 0
            || key_bad
        {
            return STATUS_INVALID;
        }
        let key: Option<&[u8]> = match (key_present, key_len) {
            (0, _) => None,
            (_, 0) => Some(&[]),
            // SAFETY: non-null (checked) and valid for `key_len` bytes (caller's promise).
            _ => Some(unsafe { std::slice::from_raw_parts(key_ptr, key_len) }),
        };
        // SAFETY: non-null (checked), valid for `partitions` values (caller's promise).
        let in_flight = unsafe { std::slice::from_raw_parts(in_flight_ptr, partitions as usize) };
        // SAFETY: `state` was made by `new::<P>` and is exclusively ours during this call.
        let strategy = unsafe { &mut *state.cast::<P>() };
        let msg = Message {
            key,
            value_len,
            in_flight,
        };
        match catch_unwind(AssertUnwindSafe(|| strategy.partition(&msg))) {
            Ok(p) => {
                // SAFETY: non-null (checked), valid for a write (caller's promise).
                unsafe { partition_out.write(p) };
                STATUS_OK
            }
            Err(_) => STATUS_PANIC,
        }
    }

    /// [`FreeFn`] for `P`.
    ///
    /// # Safety
    /// `state` is null or comes from [`new`] for the same `P`, and is not
    /// used again.
    pub unsafe extern "C" fn free<P: Partitioner>(state: *mut c_void) {
        if state.is_null() {
            return;
        }
        // SAFETY: made by `Box::into_raw` in `new::<P>`; the caller never uses it again.
        let boxed = unsafe { Box::from_raw(state.cast::<P>()) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }
}

/// Writes a plugin's exports for a [`Partitioner`] type:
/// `declare_partitioner!(MyStrategy, "my-strategy");`
///
/// Exports the [`TABLE_SYMBOL`] function returning a static
/// [`PartitionerTable`] whose functions wrap every call in `catch_unwind`.
#[macro_export]
macro_rules! declare_partitioner {
    ($ty:ty, $name:expr) => {
        $crate::declare_partitioner!(@abi_version $crate::ABI_VERSION, $ty, $name);
    };
    // Hidden arm for the loader's tests: a plugin claiming another ABI version.
    (@abi_version $version:expr, $ty:ty, $name:expr) => {
        /// The plugin's one export: its ABI table.
        #[no_mangle]
        pub extern "C" fn yak_partitioner_table() -> *const $crate::PartitionerTable {
            const NAME: &str = $name;
            static TABLE: $crate::PartitionerTable = $crate::PartitionerTable {
                abi_version: $version,
                name_ptr: NAME.as_ptr(),
                name_len: NAME.len(),
                new: $crate::ffi::new::<$ty>,
                partition: $crate::ffi::partition::<$ty>,
                free: $crate::ffi::free::<$ty>,
            };
            &TABLE
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Fixed(u32);
    impl Partitioner for Fixed {
        fn new(config: &Config) -> Self {
            Fixed(config.seed as u32)
        }
        fn partition(&mut self, msg: &Message<'_>) -> u32 {
            if msg.key == Some(b"boom".as_slice()) {
                panic!("boom");
            }
            self.0 + msg.key.map_or(100, <[u8]>::len) as u32
        }
    }
    declare_partitioner!(Fixed, "fixed");

    fn table() -> &'static PartitionerTable {
        // SAFETY: the macro's function returns a pointer to a static table.
        unsafe { &*yak_partitioner_table() }
    }

    fn new_state(seed: u64, out: *mut *mut c_void) -> i32 {
        // SAFETY: `out` is null or points to a live local.
        unsafe { (table().new)(1, seed, out) }
    }

    fn free(state: *mut c_void) {
        // SAFETY: `state` is null or came from `new_state` and is not used again.
        unsafe { (table().free)(state) }
    }

    fn call(state: *mut c_void, key: Option<&[u8]>, in_flight: &[u64]) -> (i32, u32) {
        let mut out = u32::MAX;
        let (ptr, len) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
        let present = u8::from(key.is_some());
        let n = in_flight.len() as u32;
        // SAFETY: every pointer is null or valid for its length; `state` is null or from `new_state`.
        let status = unsafe {
            (table().partition)(state, ptr, len, present, 3, in_flight.as_ptr(), n, &mut out)
        };
        (status, out)
    }

    #[test]
    fn given_declared_type_when_reading_table_should_expose_version_name_and_calls() {
        let t = table();
        assert_eq!(t.abi_version, ABI_VERSION);
        // SAFETY: the name points to a static str of that length.
        let name = unsafe { std::slice::from_raw_parts(t.name_ptr, t.name_len) };
        assert_eq!(name, b"fixed");
        let mut state = std::ptr::null_mut();
        assert_eq!(new_state(7, &mut state), STATUS_OK);
        assert_eq!(call(state, Some(b"ab"), &[0, 0]), (STATUS_OK, 9));
        assert_eq!(
            call(state, Some(b""), &[0, 0]),
            (STATUS_OK, 7),
            "empty key is present"
        );
        assert_eq!(call(state, None, &[0]), (STATUS_OK, 107), "absent key");
        free(state);
    }

    #[test]
    fn given_panicking_strategy_when_partitioning_should_return_panic_status() {
        let mut state = std::ptr::null_mut();
        assert_eq!(new_state(0, &mut state), STATUS_OK);
        assert_eq!(call(state, Some(b"boom"), &[0]).0, STATUS_PANIC);
        assert_eq!(
            call(state, Some(b"x"), &[0]),
            (STATUS_OK, 1),
            "still usable after a panic"
        );
        free(state);
    }

    #[test]
    fn given_null_pointers_or_no_partitions_when_partitioning_should_return_invalid() {
        let mut state = std::ptr::null_mut();
        assert_eq!(new_state(0, std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!(new_state(0, &mut state), STATUS_OK);
        assert_eq!(call(state, None, &[]).0, STATUS_INVALID);
        assert_eq!(call(std::ptr::null_mut(), None, &[0]).0, STATUS_INVALID);
        free(state);
        free(std::ptr::null_mut());
    }
}
