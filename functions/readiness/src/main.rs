//! readiness: on a schedule in the DR region, evaluates whether the standby side is ready to take over, writes the
//! failures per check as metrics (the readiness alarm pages on them), and tells the operators when a verdict changes.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::readiness::handle).await
}
