//! `wgformer devices`: every adapter wgpu can see, with the features and limits wgformer uses.

use clap::Args;
use wgformer::gpu::{list_adapters, BackendChoice};

#[derive(Args)]
pub struct DevicesArgs {
    /// Only this backend.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DevicesArgs) -> anyhow::Result<()> {
    let adapters = list_adapters(a.backend);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found: install a Vulkan driver (your GPU vendor's, or `apt-get install mesa-vulkan-drivers` for the lavapipe software adapter)"
        );
    }
    for d in &adapters {
        println!("[{}] {}", d.index, d.name);
        println!("    backend      {}", d.backend);
        println!("    type         {}", d.device_type);
        println!("    driver       {} {}", d.driver, d.driver_info);
        let f = if d.features.is_empty() {
            "none of SHADER_F16, SUBGROUP, TIMESTAMP_QUERY".to_string()
        } else {
            d.features.join(", ")
        };
        println!("    features     {f}");
        println!(
            "    subgroups    {}..{} invocations",
            d.subgroup_sizes[0], d.subgroup_sizes[1]
        );
        let coop = if d.cooperative_matrix.is_empty() {
            "none (matmuls use the portable kernel)".to_string()
        } else {
            d.cooperative_matrix.join(", ")
        };
        println!("    coop matrix  {coop}");
        let l = &d.limits;
        println!(
            "    limits       storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_storage_buffers_per_shader_stage
        );
        if d.backend == "gl" {
            println!(
                "    note         GL lacks f16, subgroups and timestamps; prefer a Vulkan driver"
            );
        }
    }
    Ok(())
}
