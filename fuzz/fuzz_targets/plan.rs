//! Bytes -> `parse_env_file` -> `FailoverPlan::from_map`, alone and laid over the reference plan (so most inputs
//! get past the first required variable): no panic, a refusal is a Config error naming a PILOTLIGHT_ variable, an
//! accepted plan loads the same twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pilotlight::ErrorKind;
use pilotlight::plan::{FailoverPlan, parse_env_file};

const REFERENCE: &str = include_str!("../../plans/reference.env");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(vars) = parse_env_file(text) else {
        return;
    };
    let mut over_reference = parse_env_file(REFERENCE).unwrap();
    over_reference.extend(vars.clone());
    for vars in [vars, over_reference] {
        match FailoverPlan::from_map(&vars) {
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Config, "{e}");
                assert!(e.message.starts_with("plan variable PILOTLIGHT_"), "{e}");
            }
            Ok(plan) => assert_eq!(FailoverPlan::from_map(&vars).unwrap(), plan),
        }
    }
});
