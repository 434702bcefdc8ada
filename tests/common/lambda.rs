//! Minimal Lambda client for tests that need a function in ministack (e.g. for its Step Functions to call).
//! aws-sdk-lambda is not a workspace dependency (the product never manages functions), so this speaks Lambda's
//! REST API (`POST /2015-03-31/functions`) over a plain HTTP request on 127.0.0.1 (tests/support/emulator_http.rs),
//! with the `provided.al2023` deployment package (a zip holding an executable `bootstrap`) built here. ministack
//! reads the region from the Authorization header's credential scope and does not check signatures.
#![allow(dead_code)]

use serde_json::{Value, json};

use crate::common::emulator_http::{request, unsigned_authorization};

/// Creates a `provided.al2023` function in ministack whose `bootstrap` is `script` (any executable text, e.g. a
/// Python Runtime API loop). Returns the function ARN.
pub fn create_function(region: &str, name: &str, script: &str) -> String {
    let body = json!({
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Role": format!("arn:aws:iam::{}:role/{name}", crate::common::ACCOUNT),
        "Timeout": 30,
        "Code": {"ZipFile": base64(&zip_one_file("bootstrap", script.as_bytes(), 0o755))},
    });
    let out = post(region, "/2015-03-31/functions", &body);
    out["FunctionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("CreateFunction {name}: no FunctionArn in {out}"))
        .to_string()
}

fn post(region: &str, path: &str, body: &Value) -> Value {
    let auth = unsigned_authorization(region, "lambda");
    let (status, text) = request(
        &crate::common::ministack_url(),
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    );
    assert!(
        (200..300).contains(&status),
        "Lambda {path} failed: HTTP {status}\n{text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("Lambda {path}: {e}: {text}"))
}

/// A zip archive holding one stored (uncompressed) file with Unix permissions `mode`.
pub fn zip_one_file(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
    const DOS_DATE_1980_01_01: u16 = 0x21;
    let mut out = Vec::new();
    let common = |out: &mut Vec<u8>| {
        out.extend(20u16.to_le_bytes()); // version needed: 2.0
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(0u16.to_le_bytes()); // method: stored
        out.extend(0u16.to_le_bytes()); // time
        out.extend(DOS_DATE_1980_01_01.to_le_bytes());
        out.extend(crc.to_le_bytes());
        out.extend(size.to_le_bytes()); // compressed
        out.extend(size.to_le_bytes()); // uncompressed
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // extra field length
    };
    out.extend(0x0403_4b50u32.to_le_bytes()); // local file header
    common(&mut out);
    out.extend(name.as_bytes());
    out.extend(data);
    let central_at = out.len() as u32;
    out.extend(0x0201_4b50u32.to_le_bytes()); // central directory header
    out.extend(((3u16 << 8) | 20).to_le_bytes()); // made by: Unix, 2.0 (so the mode below counts)
    common(&mut out);
    out.extend(0u16.to_le_bytes()); // comment length
    out.extend(0u16.to_le_bytes()); // disk number
    out.extend(0u16.to_le_bytes()); // internal attributes
    out.extend(((0o100_000 | mode) << 16).to_le_bytes()); // external attributes: regular file + mode
    out.extend(0u32.to_le_bytes()); // local header offset
    out.extend(name.as_bytes());
    let central_size = out.len() as u32 - central_at;
    out.extend(0x0605_4b50u32.to_le_bytes()); // end of central directory
    out.extend([0u8; 4]); // disk numbers
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(central_size.to_le_bytes());
    out.extend(central_at.to_le_bytes());
    out.extend(0u16.to_le_bytes()); // comment length
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn encoders_match_their_references() {
    // RFC 4648 test vectors; CRC-32/ISO-HDLC check value.
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), want);
    }
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
