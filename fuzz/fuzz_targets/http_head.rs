//! The HTTP request head parser, on the whole input and on a prefix of it (as a head
//! arrives over several reads).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packgate::http::conn::parse_head;

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let whole = parse_head(data);
    if let Ok(Some((uri, _, left))) = &whole {
        assert!(*left < data.len(), "a request consumes bytes");
        assert!(!uri.is_empty());
    }
    if let Err(status) = whole {
        assert!((400..500).contains(&status), "status {status}");
    }
    // A prefix that already held a whole head parses to the same request.
    let prefix = &data[..data.len() * usize::from(cut) / 255];
    if let Ok(Some((uri, close, left))) = parse_head(prefix) {
        let consumed = prefix.len() - left;
        assert_eq!(
            parse_head(data),
            Ok(Some((uri, close, data.len() - consumed))),
            "the head's bytes alone decided the request"
        );
    }
});
