//! Inputs the fuzz targets (fuzz/) found, kept as tests of the parsers they broke.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use packgate::rtmp::amf0::Amf0Value;

/// Counts this thread's live heap bytes and their peak (tests run on parallel threads).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(by: usize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + by);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

fn shrink(by: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(by)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grow(new_size - layout.size());
        } else {
            shrink(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes `f` took above what was live when it started.
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    drop(f());
    PEAK.with(Cell::get) - start
}

/// Strict arrays nested 30 deep, each declaring as many items as bytes remain: every level
/// reserved its own slots for the same bytes, ~940 heap bytes per input byte (an 8 MiB
/// message could reserve 8 GB). Found by the `amf0` target's allocation bound.
#[test]
fn nested_strict_arrays_reserve_only_what_they_read() {
    let total = 4000u32;
    let mut input = Vec::new();
    let mut remaining = total;
    for _ in 0..30 {
        remaining -= 5;
        input.push(0x0A);
        input.extend_from_slice(&remaining.to_be_bytes());
    }
    input.resize(total as usize, 0x05); // nulls
    let took = peak_of(|| Amf0Value::decode_all(&input));
    let bound = 4 * std::mem::size_of::<Amf0Value>() * input.len() + 32 * 1024;
    assert!(
        took <= bound,
        "decoding {} bytes took {took} heap bytes (bound {bound})",
        input.len()
    );
}
