//! AMF0 decoding: no panic, what decodes re-encodes stably, and the memory a decode takes
//! is bounded by the bytes present (a declared count must not reserve memory by itself).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use packgate::rtmp::amf0::Amf0Value;

/// Counts live heap bytes and their peak, so a target can bound what one call allocates.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes a decode may take per input byte: a one-byte value (null) becomes one
/// `Amf0Value` in a vector that may have doubled, plus slack for the slots each nesting level reserves up front.
fn budget(input_len: usize) -> usize {
    4 * std::mem::size_of::<Amf0Value>() * input_len + 32 * 1024
}

fn encode(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let decoded = Amf0Value::decode_all(data);
    let took = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        took <= budget(data.len()),
        "decoding {} bytes took {took} heap bytes",
        data.len()
    );
    let mut one = data;
    let _ = Amf0Value::decode(&mut one);

    if let Ok(values) = decoded {
        let first = encode(&values);
        let again = Amf0Value::decode_all(&first).expect("our own encoding decodes");
        assert_eq!(encode(&again), first, "re-encoding is stable");
        for v in &values {
            let _ = (v.get("app"), v.as_str(), v.as_f64());
        }
    }
});
