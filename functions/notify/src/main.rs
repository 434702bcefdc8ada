//! notify: one SNS message per milestone, failure or final report to the operators' topic (see the module docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::notify::handle).await
}
