//! The functions' trust roots (aws/clients.rs `TrustRoots`) over a real TLS handshake: a local HTTPS endpoint whose
//! certificate comes from a CA of this test (openssl) answers a DynamoDB call. With the built-in Amazon Trust
//! Services roots the SDK refuses it (no other CA vouches for an AWS endpoint); with the system roots and
//! `SSL_CERT_FILE` naming that CA, as an operator behind a TLS-inspecting proxy would set it, the call succeeds.
//! One process for both cases: the system roots are read once per process, as in a function.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use aws_config::{BehaviorVersion, Region};
use pilotlight::aws::clients::TrustRoots;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl on PATH");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a leaf certificate for 127.0.0.1 signed by it, and an HTTPS server with the leaf answering every POST
/// with an empty DynamoDB ListTables result. Returns the server, its URL and the CA file.
fn https_endpoint(dir: &Path) -> (Server, String, String) {
    // A P-256 key and, with -x509, the CA's self-signed certificate; without it, the leaf's request.
    let new_key = |rest: &[&str]| {
        let mut args = vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        args.extend_from_slice(rest);
        openssl(dir, &args);
    };
    new_key(&[
        "-x509",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=pilotlight test CA",
    ]);
    new_key(&[
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
        ],
    );
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"TableNames": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("leaf.pem", "leaf.key")
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 on PATH");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let url = format!("https://127.0.0.1:{}", port.trim());
    let ca = dir.join("ca.pem").display().to_string();
    (Server(child), url, ca)
}

async fn list_tables(roots: &TrustRoots, url: &str) -> Result<(), String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(roots.https_client())
        .region(Region::new("ap-northeast-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .endpoint_url(url)
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.list_tables()
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

#[tokio::test]
async fn aws_calls_trust_amazon_trust_services_only_unless_a_bundle_is_named() {
    let dir = std::env::temp_dir().join(format!("pilotlight-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_server, url, ca) = https_endpoint(&dir);

    let refused = list_tables(&TrustRoots::AmazonTrustServices, &url)
        .await
        .expect_err("a certificate from another CA must not authenticate an AWS endpoint");
    assert!(
        refused.contains("UnknownIssuer") || refused.contains("invalid peer certificate"),
        "refused for another reason: {refused}"
    );

    // SAFETY: set before the first read of the system roots in this process, and no other thread reads the
    // environment meanwhile (this file holds one test).
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca) };
    let roots = TrustRoots::from_env(Some(&ca));
    assert_eq!(
        roots,
        TrustRoots::System {
            cert_file: ca.clone()
        }
    );
    list_tables(&roots, &url)
        .await
        .expect("the named bundle's CA authenticates the endpoint");
    let _ = std::fs::remove_dir_all(&dir);
}
