//! The LL-HLS delivery directive parser (`_HLS_msn`, `_HLS_part`, `_HLS_skip`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packgate::http::blocking::Directives;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    match Directives::parse(query) {
        Ok(d) => {
            assert!(
                d.part.is_none() || d.msn.is_some(),
                "_HLS_part needs _HLS_msn"
            );
            if let Some(msn) = d.msn {
                assert!(query.contains("_HLS_msn="), "msn {msn} from nowhere");
            }
            // Parameters that are not directives never change the outcome.
            let extra = format!("{query}&cb=1&_HLS_other=x");
            assert_eq!(Directives::parse(&extra), Ok(d));
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
