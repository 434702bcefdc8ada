//! shift-traffic: one Global Accelerator dial step towards the target region per `start` (see the module docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::shift_traffic::handle).await
}
