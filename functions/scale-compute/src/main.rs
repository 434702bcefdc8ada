//! scale-compute: point the target region's launch template at the newest backed-up AMI and scale its Auto Scaling
//! group up; `status` counts InService, target-healthy instances.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::scale_compute::handle).await
}
