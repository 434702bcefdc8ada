//! probe: on a schedule in the DR region, checks the primary from outside it and publishes one CloudWatch metric
//! per target (the alarm on them is one of detect's quorum).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::probe::handle).await
}
