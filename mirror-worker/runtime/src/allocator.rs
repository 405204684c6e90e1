//! One allocator for the whole process: jemalloc, replacing `malloc`/`free` for librdkafka's C code as well
//! as for Rust. A mirrored record is allocated on its stream's thread and freed on the producer's delivery
//! thread; glibc's per-thread arenas made that handover cost a third of both threads' time, and jemalloc
//! doubled the worker's throughput at 100-byte records (BENCHMARKS.md).
//!
//! [`use_jemalloc!`](crate::use_jemalloc) installs it in a binary: the worker; the benchmark, whose limits must
//! run on the same allocator as the worker they are compared with; and the operator, whose Kafka clients
//! (lag, migration progress) are the same librdkafka. With unprefixed symbols, linking this crate replaces
//! `malloc` for C code even without the macro: the macro makes Rust's allocations use it too.

use std::ffi::c_char;

pub use tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options, read through the `malloc_conf` symbol; `MALLOC_CONF` in the environment
/// overrides them. One arena instead of one per thread kept the worker's peak RSS at 1 KB records 8 MiB lower,
/// at the same throughput, in the benchmark.
///
/// Freed pages go back to the kernel after 1 s instead of jemalloc's 10 s (`dirty_decay_ms`), and at once
/// instead of by `MADV_FREE`, which leaves them in the RSS until the kernel needs them (`muzzy_decay_ms`). A
/// fetch response and the records it held are freed together, megabytes at a time, and the next ones are
/// allocated before 10 s are up: the worker's peak RSS at 100-byte records over 64 partitions was 10-20 MiB
/// above its live heap. With these, 59-60 MiB per round instead of 63-83 (BENCHMARKS.md).
pub const OPTIONS: Options = Options(c"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer that may live in a `static`.
#[repr(transparent)]
pub struct Options(*const c_char);

// SAFETY: it points at a string literal, immutable for the life of the process.
unsafe impl Sync for Options {}

/// Makes jemalloc, with [`OPTIONS`], the allocator of the binary that invokes it (once, at the crate root).
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;

        #[unsafe(export_name = "malloc_conf")]
        static MALLOC_CONF: $crate::allocator::Options = $crate::allocator::OPTIONS;
    };
}
