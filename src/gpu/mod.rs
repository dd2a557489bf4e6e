//! The GPU context: adapter choice, device features and limits, a pipeline cache, error capture.
//! It knows wgpu and nothing above it (graph timing lives in [`crate::profiler`]).
//!
//! wgpu's default error handler panics; this module installs one that records the error so every
//! failure reaches the caller as an [`Error`] naming the cause.

use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which graphics API to run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The best adapter on any backend (GL only when nothing else exists).
    #[default]
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl BackendChoice {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto => wgpu::Backends::all(),
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::Gl => wgpu::Backends::GL,
        }
    }

    fn missing_hint(self) -> &'static str {
        match self {
            BackendChoice::Vulkan => {
                "no Vulkan adapter: install a Vulkan driver (your GPU vendor's, or `apt-get install mesa-vulkan-drivers` for the lavapipe software adapter)"
            }
            BackendChoice::Metal => "no Metal adapter: Metal exists only on macOS and iOS",
            BackendChoice::Dx12 => "no DX12 adapter: DX12 exists only on Windows 10 and later",
            BackendChoice::Gl => {
                "no OpenGL adapter: install an OpenGL/EGL driver (e.g. `apt-get install libegl1 libgl1-mesa-dri`)"
            }
            BackendChoice::Auto => {
                "no GPU adapter found: install a Vulkan driver (your GPU vendor's, or `apt-get install mesa-vulkan-drivers` for the lavapipe software adapter)"
            }
        }
    }
}

/// Which kernel variants run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum KernelSet {
    /// CPU-adapter variants on native CPU adapters (lavapipe), GPU variants elsewhere (in
    /// browsers too, SwiftShader included).
    #[default]
    Auto,
    /// Workgroup-memory tiles and barriers: the variants real GPUs run.
    Gpu,
    /// Barrier-free variants without workgroup memory (fast on software adapters).
    Cpu,
}

/// Which matmul kernel runs where the f16 path allows tensor cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum MatmulChoice {
    /// Cooperative matrices where the adapter has a usable configuration, else portable.
    #[default]
    Auto,
    /// The portable kernels only (any adapter).
    Portable,
    /// Cooperative matrices (tensor cores); an error where the adapter has none.
    Coop,
}

/// The arithmetic models run in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f16 on GPUs with SHADER_F16, f32 on CPU adapters (where f16 brings nothing).
    #[default]
    Auto,
    /// Hugging Face's f32 numbers (parity within 1e-4).
    F32,
    /// Matmul inputs rounded to f16 so tensor cores can run them (cooperative matrices);
    /// accumulators, layer-norm and softmax statistics and the residual stream stay f32.
    F16,
}

/// The cooperative-matrix configuration kernels use: square `size`×`size` f16 tiles with an f32
/// accumulator, run by subgroups of at most `subgroup_max` invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CoopConfig {
    pub size: u32,
    pub subgroup_max: u32,
}

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub backend: BackendChoice,
    /// An index into `wgformer devices`' list, or a case-insensitive substring of the adapter name.
    pub adapter: Option<String>,
    /// Do not request SHADER_F16 even where the adapter has it: f16 weights are then unpacked
    /// from u32 pairs (a workaround for drivers with faulty f16 support).
    pub no_f16: bool,
    /// Force GPU or CPU-adapter kernel variants (tests run both whatever the adapter).
    pub kernels: KernelSet,
    /// Cooperative-matrix matmuls or the portable kernel.
    pub matmul: MatmulChoice,
    /// f32 or f16 arithmetic for every model on this device.
    pub precision: Precision,
    /// Plan for a smaller storage-binding limit than the adapter's: weights above it are split
    /// into row blocks, activations above it refused. Tests use it to run the split-weight
    /// paths on tiny models; `None` (the default) takes the adapter's limit.
    pub max_binding_bytes: Option<u64>,
}

/// What `wgformer devices` shows for one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterReport {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub features: Vec<&'static str>,
    pub limits: LimitsReport,
    /// Cooperative-matrix configurations the adapter lists, e.g. `16x16x16 f16*f16+f32`.
    pub cooperative_matrix: Vec<String>,
    pub subgroup_sizes: [u32; 2],
}

/// The limits that decide what wgformer can run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LimitsReport {
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_storage_buffers_per_shader_stage: u32,
}

/// Features wgformer uses when present.
const WANTED: [(wgpu::Features, &str); 5] = [
    (wgpu::Features::SHADER_F16, "SHADER_F16"),
    (wgpu::Features::SUBGROUP, "SUBGROUP"),
    (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY"),
    (
        wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        "TIMESTAMP_QUERY_INSIDE_PASSES",
    ),
    (
        wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
        "COOPERATIVE_MATRIX",
    ),
];

fn coop_names(a: &wgpu::Adapter) -> Vec<String> {
    if !a
        .features()
        .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        return vec![];
    }
    a.cooperative_matrix_properties()
        .iter()
        .map(|p| {
            format!(
                "{}x{}x{} {:?}*{:?}+{:?}",
                p.m_size, p.n_size, p.k_size, p.ab_type, p.ab_type, p.cr_type
            )
            .to_lowercase()
        })
        .collect()
}

/// The largest square f16×f16→f32 configuration the kernels can use (8 or 16), if any.
fn usable_coop(a: &wgpu::Adapter) -> Option<CoopConfig> {
    use wgpu::CooperativeScalarType as T;
    let f = a.features();
    let need = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
        | wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP;
    if !f.contains(need) {
        return None;
    }
    let info = a.get_info();
    let subgroup_max = info.subgroup_max_size;
    // The kernel runs 4 subgroups per workgroup; the workgroup must fit the invocation limit.
    if subgroup_max == 0 || 4 * subgroup_max > a.limits().max_compute_invocations_per_workgroup {
        return None;
    }
    a.cooperative_matrix_properties()
        .iter()
        .filter(|p| {
            p.ab_type == T::F16
                && p.cr_type == T::F32
                && p.m_size == p.n_size
                && p.n_size == p.k_size
                && (p.m_size == 8 || p.m_size == 16)
        })
        .map(|p| p.m_size)
        .max()
        .map(|size| CoopConfig { size, subgroup_max })
}

fn feature_names(f: wgpu::Features) -> Vec<&'static str> {
    WANTED
        .iter()
        .filter(|(w, _)| f.contains(*w))
        .map(|(_, n)| *n)
        .collect()
}

fn limits_report(l: &wgpu::Limits) -> LimitsReport {
    LimitsReport {
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_buffer_size: l.max_buffer_size,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn report(index: usize, a: &wgpu::Adapter) -> AdapterReport {
    let info = a.get_info();
    AdapterReport {
        index,
        name: info.name.clone(),
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        features: feature_names(a.features()),
        limits: limits_report(&a.limits()),
        cooperative_matrix: coop_names(a),
        subgroup_sizes: [info.subgroup_min_size, info.subgroup_max_size],
    }
}

fn instance(backend: BackendChoice) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backend.backends();
    wgpu::Instance::new(desc)
}

async fn enumerate(backend: BackendChoice) -> Vec<wgpu::Adapter> {
    // On the web this is the one adapter `navigator.gpu.requestAdapter()` gives.
    let mut v = instance(backend)
        .enumerate_adapters(backend.backends())
        .await;
    // Stable order: best first, so index 0 is what `auto` picks.
    v.sort_by_key(rank);
    v
}

fn rank(a: &wgpu::Adapter) -> (u8, u8) {
    let info = a.get_info();
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    // GL lacks f16, subgroups and timestamps: last resort.
    let be = u8::from(info.backend == wgpu::Backend::Gl);
    (be, ty)
}

/// Every adapter wgpu can see on the chosen backend(s), best first.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(backend: BackendChoice) -> Vec<AdapterReport> {
    pollster::block_on(enumerate(backend))
        .iter()
        .enumerate()
        .map(|(i, a)| report(i, a))
        .collect()
}

/// A device and queue with what wgformer learned about them.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// The largest buffer one binding may take: the adapter's limit (and buffer size), or less
    /// with [`GpuOptions::max_binding_bytes`].
    max_binding: u64,
    /// Kernels choose their CPU-adapter variants (see [`KernelSet`]).
    cpu_kernels: bool,
    /// The cooperative-matrix configuration matmuls use, when enabled.
    coop: Option<CoopConfig>,
    /// Auto resolved: F32 or F16.
    precision: Precision,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    /// Bytes of the [`GpuBuffer`]s alive now (weights, graph buffers).
    live_bytes: Arc<std::sync::atomic::AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// Kernel compilations whose validation a browser answers later: awaited before any result
    /// is read back, so a kernel that failed to compile never yields numbers.
    #[cfg(target_arch = "wasm32")]
    pending: Mutex<Vec<(String, PendingScope)>>,
}

#[cfg(target_arch = "wasm32")]
type PendingScope = std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>>>>;

impl Gpu {
    /// Picks an adapter per `opts` and opens a device on it with every wanted feature it has.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        pollster::block_on(Self::new_async(opts))
    }

    /// As [`new`](Self::new), awaiting the adapter and device (the only way in a browser).
    pub async fn new_async(opts: &GpuOptions) -> Result<Gpu> {
        let adapters = enumerate(opts.backend).await;
        if adapters.is_empty() {
            return Err(Error::Gpu(if cfg!(target_arch = "wasm32") {
                "no WebGPU adapter: this browser exposes navigator.gpu but gave no adapter (enable WebGPU / hardware acceleration, or try another browser)".into()
            } else {
                opts.backend.missing_hint().into()
            }));
        }
        let adapter = match &opts.adapter {
            None => adapters.into_iter().next().unwrap(),
            Some(sel) => pick(adapters, sel)?,
        };
        Self::from_adapter(adapter, opts).await
    }

    async fn from_adapter(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let have = adapter.features();
        let mut want = WANTED
            .iter()
            .fold(wgpu::Features::empty(), |acc, (f, _)| acc | *f);
        if opts.no_f16 {
            want.remove(wgpu::Features::SHADER_F16);
        }
        let coop = match opts.matmul {
            MatmulChoice::Portable => None,
            _ if opts.no_f16 => None,
            _ => usable_coop(&adapter),
        };
        if opts.matmul == MatmulChoice::Coop && coop.is_none() {
            let listed = coop_names(&adapter);
            return Err(Error::Gpu(format!(
                "--matmul coop: `{}` has no usable cooperative-matrix configuration (needs square 8x8 or 16x16 f16*f16+f32 tiles, SHADER_F16 and SUBGROUP{}; it lists: {}). Use --matmul auto or portable",
                info.name,
                if opts.no_f16 { ", and not --no-f16" } else { "" },
                if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
            )));
        }
        if coop.is_none() {
            want.remove(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        }
        let required_features = have & want;
        let limits = adapter.limits();
        if limits.max_compute_invocations_per_workgroup < 256
            || limits.max_compute_workgroup_storage_size < 16384
        {
            return Err(Error::Gpu(format!(
                "adapter `{}` allows {} invocations and {} bytes of workgroup storage; wgformer needs 256 and 16384. Pick another with --adapter (see `wgformer devices`)",
                info.name,
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroup_storage_size
            )));
        }
        // The adapter's own limits, not wgpu's defaults: WebGPU gives only what is requested.
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgformer"),
                required_features,
                required_limits: limits.clone(),
                experimental_features: if coop.is_some() {
                    // SAFETY: wgpu marks cooperative matrices experimental because its validation of
                    // them is incomplete. Our only use is the matmul kernel, whose loads and stores
                    // stay inside workgroup arrays sized for the tile (bounds are handled when tiles
                    // are staged from storage), and every configuration it uses is one the adapter
                    // lists in `cooperative_matrix_properties`.
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not open a device on `{}`: {e}", info.name)))?;

        let precision = match opts.precision {
            Precision::Auto
                if device.features().contains(wgpu::Features::SHADER_F16)
                    && info.device_type != wgpu::DeviceType::Cpu =>
            {
                Precision::F16
            }
            Precision::Auto => Precision::F32,
            p => p,
        };
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lsink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lsink.lock().unwrap() = Some(format!("{reason:?}: {msg}"));
        });
        let dl = device.limits();
        let max_binding = opts
            .max_binding_bytes
            .unwrap_or(u64::MAX)
            .min(dl.max_storage_buffer_binding_size)
            .min(dl.max_buffer_size);
        Ok(Gpu {
            features: device.features(),
            limits: dl,
            max_binding,
            device,
            queue,
            cpu_kernels: match opts.kernels {
                // Not in browsers: on Chromium's SwiftShader the CPU-adapter variants (tuned for
                // lavapipe) never finished a tiny model's forward, the GPU ones take 2 s.
                KernelSet::Auto => {
                    info.device_type == wgpu::DeviceType::Cpu
                        && info.backend != wgpu::Backend::BrowserWebGpu
                }
                KernelSet::Gpu => false,
                KernelSet::Cpu => true,
            },
            precision,
            coop,
            info,
            pipelines: Mutex::default(),
            live_bytes: Arc::default(),
            errors,
            lost,
            #[cfg(target_arch = "wasm32")]
            pending: Mutex::default(),
        })
    }

    /// The most bytes one storage binding (one weight piece, one activation) may hold.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// A CPU adapter (lavapipe, SwiftShader).
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Kernels pick their variants without workgroup memory (CPU adapters, unless forced).
    pub fn cpu_kernels(&self) -> bool {
        self.cpu_kernels
    }

    /// The precision models run in: [`Precision::F32`] or [`Precision::F16`], never `Auto`.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The cooperative-matrix configuration in use, if any (see [`MatmulChoice`]).
    pub fn coop(&self) -> Option<CoopConfig> {
        self.coop
    }

    /// How many subgroups a cooperative-matrix workgroup (4 subgroups of the largest size) may
    /// hold when the adapter runs smaller ones: the coop kernels give each its own scratch.
    pub fn coop_subgroups(&self) -> u32 {
        let sg = self.coop.map_or(1, |c| c.subgroup_max);
        (4 * sg).div_ceil(self.info.subgroup_min_size.max(1)).max(4)
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    pub fn backend(&self) -> wgpu::Backend {
        self.info.backend
    }

    /// A one-line description: name, backend, type, and how models run on it (precision,
    /// matmul kind, kernel set), so every figure printed with it says what was measured.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}; {}, {}{})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            match self.precision {
                Precision::F16 => "f16",
                _ => "f32",
            },
            match self.coop {
                Some(c) if self.precision == Precision::F16 => {
                    format!("coop {0}x{0} matmul", c.size)
                }
                _ => "portable matmul".to_string(),
            },
            if self.cpu_kernels {
                ", CPU-adapter kernels"
            } else {
                ""
            }
        )
    }

    /// The report `wgformer devices` prints, for the opened device.
    pub fn report(&self) -> AdapterReport {
        AdapterReport {
            index: 0,
            name: self.info.name.clone(),
            backend: format!("{:?}", self.info.backend).to_lowercase(),
            device_type: format!("{:?}", self.info.device_type),
            driver: self.info.driver.clone(),
            driver_info: self.info.driver_info.clone(),
            features: feature_names(self.features),
            limits: limits_report(&self.limits),
            cooperative_matrix: self
                .coop
                .map(|c| vec![format!("{0}x{0}x{0} f16*f16+f32 (in use)", c.size)])
                .unwrap_or_default(),
            subgroup_sizes: [self.info.subgroup_min_size, self.info.subgroup_max_size],
        }
    }

    /// A compute pipeline compiled once per `key`; `source` is only called on a miss.
    pub fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        self.pipeline_entry(key, "main", source)
    }

    /// As [`pipeline`](Self::pipeline) with a named entry point.
    pub fn pipeline_entry(
        &self,
        key: &str,
        entry: &str,
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.pipelines.lock().unwrap().get(key) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("kernel `{key}` failed to compile: {e}")));
        }
        // A browser cannot wait here: the run that uses the kernel awaits the answer (see
        // `compiled`) before it reads anything back.
        #[cfg(target_arch = "wasm32")]
        self.pending
            .lock()
            .unwrap()
            .push((key.to_string(), Box::pin(scope.pop())));
        let p = Arc::new(p);
        self.pipelines
            .lock()
            .unwrap()
            .insert(key.to_string(), p.clone());
        Ok(p)
    }

    /// Awaits the validation of every kernel compiled since the last call: the first failure
    /// names its kernel.
    #[cfg(target_arch = "wasm32")]
    async fn compiled(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        let mut failed = vec![];
        for (key, scope) in pending {
            if let Some(e) = scope.await {
                failed.push(format!("kernel `{key}` failed to compile: {e}"));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        // The invalid pipelines stay cached: the device is no use for this model any more.
        self.errors.lock().unwrap().clear();
        Err(Error::Gpu(failed.join("; ")))
    }

    /// Runs `f` with the GPU errors of its calls (validation, out of memory, internal) caught
    /// for it alone, then returns `f`'s result or the first such error. Natively the catch is
    /// per thread (wgpu's error scopes), so a caller never takes another thread's error and
    /// never leaves its own for another to find. In a browser (one thread, and its scopes
    /// cannot be awaited here) `f`'s errors go to the device-wide list [`check`](Self::check)
    /// reads, checked right after.
    pub fn scoped<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            use wgpu::ErrorFilter as E;
            let scopes = [E::OutOfMemory, E::Validation, E::Internal]
                .map(|filter| self.device.push_error_scope(filter));
            let result = f();
            // Scopes nest: the last pushed pops first.
            let mut errors = vec![];
            for scope in scopes.into_iter().rev() {
                if let Some(e) = pollster::block_on(scope.pop()) {
                    errors.push(e.to_string());
                }
            }
            self.check_lost()?;
            let value = result?;
            if !errors.is_empty() {
                return Err(Error::Gpu(format!("GPU error: {}", errors.join("; "))));
            }
            Ok(value)
        }
        #[cfg(target_arch = "wasm32")]
        {
            let value = f()?;
            self.check()?;
            Ok(value)
        }
    }

    /// A lost device as an [`Error`].
    fn check_lost(&self) -> Result<()> {
        if let Some(l) = self.lost.lock().unwrap().clone() {
            return Err(Error::Gpu(format!(
                "the GPU device was lost ({l}); restart the program, and if it recurs lower --batch-size or update the driver"
            )));
        }
        Ok(())
    }

    /// Errors the device reported since the last check outside [`scoped`](Self::scoped) calls,
    /// or a lost device, as one [`Error`].
    pub fn check(&self) -> Result<()> {
        self.check_lost()?;
        let mut errs = self.errors.lock().unwrap();
        if !errs.is_empty() {
            let msg = errs.join("; ");
            errs.clear();
            return Err(Error::Gpu(format!("GPU error: {msg}")));
        }
        Ok(())
    }

    /// A read-only storage buffer holding `bytes` (weights).
    pub fn upload_storage(&self, label: &str, bytes: &[u8]) -> GpuBuffer {
        self.buffer_init(label, bytes, wgpu::BufferUsages::STORAGE)
    }

    /// A buffer counted in [`buffer_bytes`](Self::buffer_bytes) until it drops.
    pub fn buffer(&self, desc: &wgpu::BufferDescriptor) -> GpuBuffer {
        self.track(self.device.create_buffer(desc))
    }

    /// A buffer created holding `bytes`, counted like [`buffer`](Self::buffer).
    pub fn buffer_init(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> GpuBuffer {
        use wgpu::util::DeviceExt;
        self.track(
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytes,
                    usage,
                }),
        )
    }

    fn track(&self, buffer: wgpu::Buffer) -> GpuBuffer {
        self.live_bytes
            .fetch_add(buffer.size(), std::sync::atomic::Ordering::Relaxed);
        GpuBuffer {
            buffer,
            live: self.live_bytes.clone(),
        }
    }

    /// Bytes of GPU buffers wgformer holds now (weights and every cached graph's buffers):
    /// what `bench soak` watches for leaks.
    pub fn buffer_bytes(&self) -> u64 {
        self.live_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()
    }

    /// Copies `size` bytes of `src` (which needs COPY_SRC) back to the host.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_buffer(&self, src: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging)
    }

    /// Maps a MAP_READ buffer, waits, and returns its bytes.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn map_read(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        pollster::block_on(self.map_read_async(staging))
    }

    /// Maps a MAP_READ buffer and returns its bytes once the GPU has written them. Natively the
    /// device is polled to completion first; in a browser the map resolves by itself.
    pub async fn map_read_async(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        /// Unmaps on every way out while armed: a buffer left mapped (or with its map pending)
        /// after an error would fail every later submit that copies into it, so a graph's one
        /// staging buffer would break the graph for good.
        struct Unmap<'a>(Option<&'a wgpu::Buffer>);
        impl Drop for Unmap<'_> {
            fn drop(&mut self) {
                if let Some(b) = self.0 {
                    b.unmap();
                }
            }
        }
        let slice = staging.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let mut guard = Unmap(Some(staging));
        self.wait()?;
        let mapped = rx.await;
        #[cfg(target_arch = "wasm32")]
        self.compiled().await?;
        self.check()?;
        match mapped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A failed map leaves the buffer unmapped: unmapping it again is an error.
                guard.0 = None;
                return Err(Error::Gpu(format!("could not read GPU buffer: {e}")));
            }
            Err(_) => return Err(Error::Gpu("buffer map callback never ran".into())),
        }
        let out = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("could not read GPU buffer: {e}")))?
            .to_vec();
        Ok(out)
    }
}

/// A `wgpu::Buffer` whose bytes count in [`Gpu::buffer_bytes`] while it lives.
#[derive(Debug)]
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    live: Arc<std::sync::atomic::AtomicU64>,
}

impl std::ops::Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.live
            .fetch_sub(self.buffer.size(), std::sync::atomic::Ordering::Relaxed);
    }
}

fn pick(adapters: Vec<wgpu::Adapter>, sel: &str) -> Result<wgpu::Adapter> {
    let names: Vec<String> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i}: {}", a.get_info().name))
        .collect();
    if let Ok(i) = sel.parse::<usize>() {
        let n = adapters.len();
        return adapters.into_iter().nth(i).ok_or_else(|| {
            Error::Gpu(format!(
                "--adapter {i}: only {n} adapter(s) on this backend ({}); see `wgformer devices`",
                names.join(", ")
            ))
        });
    }
    let needle = sel.to_lowercase();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        .ok_or_else(|| {
            Error::Gpu(format!(
                "--adapter `{sel}` matches no adapter name ({}); see `wgformer devices`",
                names.join(", ")
            ))
        })
}

/// The device tests run on, shared by every test in the process.
///
/// Tests must not pass on a fallback they were not meant for: the backend comes from
/// `WGFORMER_TEST_BACKEND` (default `vulkan`, which lavapipe provides on machines without a GPU),
/// and a missing adapter fails the test with the fix instead of skipping it.
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub fn test_gpu() -> &'static Arc<Gpu> {
    static GPU: std::sync::OnceLock<Arc<Gpu>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| open_test_gpu(GpuOptions::default()))
}

/// A second test device without SHADER_F16, so the packed-f16 kernel variants are tested too.
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub fn test_gpu_packed_f16() -> &'static Arc<Gpu> {
    static GPU: std::sync::OnceLock<Arc<Gpu>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| {
        open_test_gpu(GpuOptions {
            no_f16: true,
            ..Default::default()
        })
    })
}

/// The test adapter in f16 precision (cooperative-matrix matmuls where it has them).
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub fn test_gpu_f16() -> &'static Arc<Gpu> {
    static GPU: std::sync::OnceLock<Arc<Gpu>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| {
        open_test_gpu(GpuOptions {
            precision: Precision::F16,
            ..Default::default()
        })
    })
}

/// The test adapter with the GPU kernel variants forced: what real GPUs run, tested on any
/// adapter (lavapipe in CI).
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub fn test_gpu_gpu_kernels() -> &'static Arc<Gpu> {
    static GPU: std::sync::OnceLock<Arc<Gpu>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| {
        open_test_gpu(GpuOptions {
            kernels: KernelSet::Gpu,
            ..Default::default()
        })
    })
}

#[cfg(not(target_arch = "wasm32"))]
/// A fresh test device (the adapter `WGFORMER_TEST_BACKEND`/`WGFORMER_TEST_ADAPTER` pick) with
/// `base`'s other options, e.g. a lowered [`GpuOptions::max_binding_bytes`].
#[doc(hidden)]
pub fn open_test_gpu(base: GpuOptions) -> Arc<Gpu> {
    let name = std::env::var("WGFORMER_TEST_BACKEND").unwrap_or_else(|_| "vulkan".into());
    let backend = <BackendChoice as clap::ValueEnum>::from_str(&name, true)
        .unwrap_or_else(|e| panic!("WGFORMER_TEST_BACKEND={name}: {e}"));
    let opts = GpuOptions {
        backend,
        adapter: std::env::var("WGFORMER_TEST_ADAPTER").ok(),
        ..base
    };
    let require_coop = std::env::var("WGFORMER_TEST_REQUIRE_COOP").is_ok_and(|v| v == "1");
    match Gpu::new(&opts) {
        Ok(g) => {
            eprintln!(
                "tests run on {}{}",
                g.describe(),
                match g.coop() {
                    Some(c) => format!(", cooperative matrices {0}x{0}", c.size),
                    None => String::new(),
                }
            );
            // CI runs the coop tests on an adapter that has them: losing it must fail, not
            // quietly test the portable kernels twice.
            if require_coop
                && g.coop().is_none()
                && !opts.no_f16
                && opts.matmul != MatmulChoice::Portable
            {
                panic!(
                    "WGFORMER_TEST_REQUIRE_COOP=1 but {} has no usable cooperative matrices (run through scripts/coopmat-lavapipe.sh)",
                    g.describe()
                );
            }
            Arc::new(g)
        }
        Err(e) => panic!(
            "tests need a {name} adapter and found none: {e}. \
                 (Set WGFORMER_TEST_BACKEND=metal|dx12|gl|auto to test another backend.)"
        ),
    }
}
