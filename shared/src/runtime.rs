//! Lambda glue shared by every function: logging, the plan and clients built once per cold start, and error
//! mapping to the contract's error types. `functions/*/src/main.rs` is one call to [`serve`].
//!
//! The edge is typed: a handler takes its step's input type and returns its output type, and [`invoke`] turns the
//! payload into the one and the other into JSON. Inputs implement [`StepEvent`] rather than plain
//! `DeserializeOwned` because parsing is more than deserializing: each input words its own rejection (the expected
//! shape, in the contract's terms), a step admits only the actions it implements, update-dns checks `change_id`
//! before the common fields, and detect dispatches alarm shapes on their keys (an EventBridge event also
//! deserializes as a Lambda-action alarm, so no derived or untagged parse can tell them apart). Outputs only need
//! `Serialize`.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::aws::clients::AwsClients;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::FailoverPlan;

/// What every handler gets: the plan and the clients, built once.
pub struct Context {
    pub plan: FailoverPlan,
    pub aws: AwsClients,
}

impl Context {
    pub async fn from_env() -> Result<Self> {
        let plan = FailoverPlan::from_env()?;
        let aws = AwsClients::new(&plan).await;
        Ok(Context { plan, aws })
    }
}

/// JSON log lines, filtered by `RUST_LOG` (`info` when unset or unreadable). The filter is tracing-subscriber's
/// `Targets` (`target=level,...`, levels only): `EnvFilter`'s span and field matching would link a regex engine into
/// every function and compile its directives at each cold start, for filters nobody sets on a Lambda function.
pub fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time(), // CloudWatch Logs timestamps every line
        )
        .with(filter)
        .try_init();
}

/// A step's input as it arrives in a Lambda payload. Parsing fails with `pilotlight.InvalidInput` saying what was
/// expected, before any AWS call.
pub trait StepEvent: Sized {
    /// The function's step name: the `Step` dimension of its invocation metrics (`crate::metrics`).
    const STEP: &'static str;
    fn from_payload(payload: Value) -> Result<Self>;
}

/// One invocation at the edge: the payload parsed into the handler's input, the handler run, its output as JSON.
/// [`serve`] answers every invocation through this, and the integration tests call steps through it, so both see
/// the JSON a Lambda function receives and returns.
pub async fn invoke<'c, F, Fut, In, Out>(
    handler: F,
    ctx: &'c Context,
    payload: Value,
) -> Result<Value>
where
    F: Fn(&'c Context, In) -> Fut,
    Fut: Future<Output = Result<Out>>,
    In: StepEvent,
    Out: Serialize,
{
    let output = handler(ctx, In::from_payload(payload)?).await?;
    serde_json::to_value(output).map_err(|e| {
        let what = std::any::type_name::<Out>();
        Error::new(ErrorKind::Aws, format!("cannot encode {what}: {e}"))
    })
}

/// Runs `handler` as the Lambda function. A bad plan does not crash-loop the cold start: every invocation is
/// answered with the `pilotlight.Config` error naming the variable, so the operator sees it where the alarm's
/// invocation failed, and nothing is called.
pub async fn serve<F, Fut, In, Out>(handler: F) -> std::result::Result<(), lambda_runtime::Error>
where
    F: Fn(&'static Context, In) -> Fut,
    Fut: Future<Output = Result<Out>>,
    In: StepEvent,
    Out: Serialize,
{
    init_tracing();
    let namespace: &'static str = Box::leak(crate::metrics::namespace().into_boxed_str());
    let ctx: std::result::Result<&'static Context, crate::Error> = match Context::from_env().await {
        Ok(ctx) => Ok(Box::leak(Box::new(ctx))),
        Err(e) => {
            tracing::error!(error = %e, "plan rejected at start-up");
            Err(e)
        }
    };
    let (handler, ctx) = (&handler, &ctx);
    let service = service_fn(move |event: LambdaEvent<Payload>| async move {
        let started = std::time::Instant::now();
        let trailing = take_refusal(&event.context.request_id);
        let result = match (ctx, event.payload.duplicate_key) {
            _ if trailing.is_some() => Err(Error::invalid_input(trailing.unwrap_or_default())),
            (_, Some(key)) => Err(crate::Error::invalid_input(format!(
                "the payload has the key {key:?} more than once: refused, nothing was called (a JSON parser keeps \
                 only one of them, so {{\"dry_run\": true, \"dry_run\": false}} would run for real); send each key once"
            ))),
            // Boxed: a step's future nested inline in the runtime's goes past the compiler's layout depth limit.
            (Ok(ctx), None) => {
                let run = Box::pin(invoke(handler, ctx, event.payload.value));
                match time_left(event.context.deadline) {
                    Some(left) => tokio::time::timeout(left, run).await.unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Transient,
                            format!(
                                "stopped {} ms before the function timeout: AWS did not answer in time; retry \
                                 (every step resumes from live state)",
                                DEADLINE_MARGIN.as_millis()
                            ),
                        ))
                    }),
                    None => run.await,
                }
            }
            (Err(e), None) => Err(e.clone()),
        };
        if let Err(e) = &result {
            tracing::error!(error_type = e.kind.error_type(), error = %e, "invocation failed");
        }
        // Every invocation, refused ones included: duration and outcome as an EMF line (no API call).
        crate::metrics::step_invocation(
            namespace,
            In::STEP,
            started.elapsed(),
            &result,
            chrono::Utc::now(),
        )
        .emit();
        result.map_err(Diagnostic::from)
    });
    lambda_runtime::Runtime::new(service)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(OneDocumentLayer)
        .run()
        .await
}

/// Invocations refused before their payload is parsed, by request id (see [`OneDocumentLayer`]).
static REFUSED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn take_refusal(request_id: &str) -> Option<String> {
    let mut refused = REFUSED.lock().unwrap_or_else(|e| e.into_inner());
    let i = refused.iter().position(|(id, _)| id == request_id)?;
    Some(refused.swap_remove(i).1)
}

/// The runtime parses the first JSON document of a payload and ignores what follows it, so
/// `{"command": "failover"} {"dry_run": true}` would run a real failover. This layer sees the raw body first and
/// marks such an invocation refused; the handler then answers `pilotlight.InvalidInput` without calling anything.
struct OneDocumentLayer;

impl<S> lambda_runtime::tower::Layer<S> for OneDocumentLayer {
    type Service = OneDocument<S>;
    fn layer(&self, inner: S) -> OneDocument<S> {
        OneDocument(inner)
    }
}

struct OneDocument<S>(S);

impl<S> lambda_runtime::tower::Service<lambda_runtime::LambdaInvocation> for OneDocument<S>
where
    S: lambda_runtime::tower::Service<lambda_runtime::LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, invocation: lambda_runtime::LambdaInvocation) -> S::Future {
        if has_trailing_content(&invocation.body) {
            REFUSED.lock().unwrap_or_else(|e| e.into_inner()).push((
                invocation.context.request_id.clone(),
                "the payload has more after its first JSON document: refused, nothing was called (the runtime would \
                 read the first one only); send one JSON object"
                    .to_string(),
            ));
        }
        self.0.call(invocation)
    }
}

/// One JSON value, then something other than white space.
pub fn has_trailing_content(body: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(body);
    de::IgnoredAny::deserialize(&mut de).is_ok() && de.end().is_err()
}

/// How long before Lambda's own timeout an invocation gives up: enough to log and post a classified error, so the
/// state machine sees `pilotlight.Transient` (retried) rather than a sandbox timeout.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// Time left before the invocation deadline (milliseconds since the epoch, from the Runtime API), less the margin;
/// None when the runtime gave no usable deadline (then only the operation timeouts bound the work).
fn time_left(deadline_ms: u64) -> Option<std::time::Duration> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let left = deadline_ms.checked_sub(now)?;
    // Lambda's longest timeout is 15 minutes: anything else is not a real deadline.
    (left <= 15 * 60 * 1000)
        .then(|| std::time::Duration::from_millis(left).saturating_sub(DEADLINE_MARGIN))
}

/// A Lambda payload as JSON, with the first key found twice in any object (serde_json keeps the last silently).
pub struct Payload {
    pub value: Value,
    pub duplicate_key: Option<String>,
}

impl Payload {
    /// Parses `text` the way the runtime parses an invocation's payload.
    pub fn parse(text: &str) -> serde_json::Result<Payload> {
        serde_json::from_str(text)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Payload, E> {
        Ok(plain(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Payload, E> {
        Ok(plain(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Payload, E> {
        Ok(plain(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Payload, E> {
        Ok(plain(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Payload, E> {
        Ok(plain(Value::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Payload, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Payload, E> {
        Ok(plain(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Payload, E> {
        Ok(plain(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Payload, A::Error> {
        let (mut items, mut duplicate_key) = (Vec::new(), None);
        while let Some(item) = seq.next_element::<Payload>()? {
            duplicate_key = duplicate_key.or(item.duplicate_key);
            items.push(item.value);
        }
        Ok(Payload {
            value: Value::Array(items),
            duplicate_key,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Payload, A::Error> {
        let (mut object, mut duplicate_key) = (Map::new(), None);
        while let Some(key) = map.next_key::<String>()? {
            let item = map.next_value::<Payload>()?;
            duplicate_key = duplicate_key.or(item.duplicate_key);
            if object.contains_key(&key) {
                duplicate_key = duplicate_key.or(Some(key.clone()));
            }
            object.insert(key, item.value);
        }
        Ok(Payload {
            value: Value::Object(object),
            duplicate_key,
        })
    }
}

fn plain(value: Value) -> Payload {
    Payload {
        value,
        duplicate_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_document_after_the_first_is_trailing_content() {
        assert!(has_trailing_content(
            br#"{"command": "failover"} {"dry_run": true}"#
        ));
        assert!(has_trailing_content(br#"{"a": 1}x"#));
        assert!(!has_trailing_content(b"{\"a\": 1}\n  "));
        assert!(!has_trailing_content(b"not json")); // the runtime refuses that itself
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        let p = Payload::parse(r#"{"command": "failover", "dry_run": true, "dry_run": false}"#)
            .unwrap();
        assert_eq!(p.duplicate_key.as_deref(), Some("dry_run"));
        let p = Payload::parse(r#"{"a": [{"b": 1}, {"c": {"d": 1, "d": 2}}]}"#).unwrap();
        assert_eq!(p.duplicate_key.as_deref(), Some("d"));
        let p = Payload::parse(r#"{"a": 1.5, "b": [true, null, "x", -3], "c": {"a": 1}}"#).unwrap();
        assert_eq!(p.duplicate_key, None);
        assert_eq!(
            p.value,
            serde_json::json!({"a": 1.5, "b": [true, null, "x", -3], "c": {"a": 1}})
        );
        assert!(Payload::parse("{\"a\": ").is_err());
    }
}
