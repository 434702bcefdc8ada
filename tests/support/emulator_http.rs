//! Test support: seeding emulators over plain HTTP where no SDK crate fits. The workspace has no aws-sdk-ec2 (it is
//! the heaviest SDK crate and the product does not need it), yet an Auto Scaling group needs a launch template, so
//! tests create it through EC2's Query API (form-encoded POST, XML answer) in moto. gapfill's admin API (seeding
//! Backup recovery points) is plain JSON. std::net only: no extra crate, and only ever 127.0.0.1.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP/1.1 request (`Connection: close`), returning the status code and the body.
pub fn request(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let host = base_url
        .strip_prefix("http://")
        .unwrap_or(base_url)
        .trim_end_matches('/');
    assert!(
        host.starts_with("127.0.0.1:") || host.starts_with("localhost:"),
        "tests only talk to local emulators, not {host}"
    );
    let mut stream =
        TcpStream::connect(host).unwrap_or_else(|e| panic!("cannot reach {base_url}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// An Authorization header that names `region` and `service` in its SigV4 credential scope: the emulators take
/// the region from there and do not check signatures.
pub fn unsigned_authorization(region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// POSTs JSON to gapfill's admin API; panics unless it answers 200.
pub fn gapfill_admin(gapfill_url: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let (status, text) = request(
        gapfill_url,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "gapfill {path} {body}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Calls an EC2 Query API action in moto for `region` (moto takes the region from the SigV4 credential scope and
/// does not check signatures); panics unless it answers 200. Returns the XML body.
pub fn ec2_query(moto_url: &str, region: &str, action: &str, params: &[(&str, &str)]) -> String {
    let mut form = format!("Action={action}&Version=2016-11-15");
    for (k, v) in params {
        form.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    let auth = unsigned_authorization(region, "ec2");
    let (status, body) = request(
        moto_url,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &auth),
        ],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "EC2 {action} in {region}: {body}");
    body
}

/// The text of the first `<tag>...</tag>` in an XML answer.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// Creates a launch template whose ImageId resolves an SSM parameter, as the DR stack's IaC does.
pub fn create_launch_template(
    moto_url: &str,
    region: &str,
    name: &str,
    ami_parameter: &str,
) -> String {
    let image = format!("resolve:ssm:{ami_parameter}");
    let xml = ec2_query(
        moto_url,
        region,
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", name),
            ("LaunchTemplateData.ImageId", &image),
            ("LaunchTemplateData.InstanceType", "t3.micro"),
        ],
    );
    xml_field(&xml, "launchTemplateId").unwrap_or_else(|| panic!("no launchTemplateId in {xml}"))
}

/// The region's default VPC (target groups of instance type need one).
pub fn default_vpc(moto_url: &str, region: &str) -> String {
    let xml = ec2_query(
        moto_url,
        region,
        "DescribeVpcs",
        &[("Filter.1.Name", "isDefault"), ("Filter.1.Value.1", "true")],
    );
    xml_field(&xml, "vpcId").unwrap_or_else(|| panic!("no default VPC in {region}: {xml}"))
}

/// application/x-www-form-urlencoded value encoding (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
