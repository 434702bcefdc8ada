//! detect: CloudWatch alarm (direct, SNS or EventBridge) or manual command -> at most one failover execution.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::detect::handle).await
}
