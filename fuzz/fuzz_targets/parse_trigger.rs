//! Bytes -> `Payload::parse` (what the runtime parses) -> `parse_trigger`, with the properties of
//! tests/properties.rs that need no generator: no panic, refusals are InvalidInput, accepted commands round-trip,
//! accepted alarms keep their ARN consistent with name, account and region.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pilotlight::ErrorKind;
use pilotlight::plan::{arn_account, arn_region, check_alarm_name};
use pilotlight::runtime::Payload;
use pilotlight::trigger::{Trigger, parse_trigger};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(payload) = Payload::parse(text) else {
        return;
    };
    // serve refuses a payload with a duplicate key before the handler; the parser must still not panic on it.
    match parse_trigger(&payload.value) {
        Err(e) => assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}"),
        Ok(Trigger::Manual(c)) => {
            let again = serde_json::to_value(&c).unwrap();
            assert_eq!(parse_trigger(&again).ok(), Some(Trigger::Manual(c)));
        }
        Ok(Trigger::Alarm(t)) => {
            assert!(check_alarm_name(&t.alarm_name).is_ok(), "{t:?}");
            if let Some(arn) = &t.alarm_arn {
                assert!(arn.ends_with(&format!(":alarm:{}", t.alarm_name)), "{t:?}");
                assert_eq!(arn_account(arn), Some(t.account_id.as_str()), "{t:?}");
                assert_eq!(arn_region(arn), Some(t.region.as_str()), "{t:?}");
            }
        }
    }
});
