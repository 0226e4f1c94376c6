//! Attachment through libxdp's multi-program dispatcher (`xdp.attach = "dispatcher"`),
//! with libxdp loaded at run time (`dlopen("libxdp.so.1")` through `libloading`), so the
//! binary builds and runs without libxdp in every other mode.
//!
//! libxdp (xdp-tools, `lib/libxdp/README.org`) keeps one XDP program on the interface, the
//! dispatcher `xdp_dispatcher`, and attaches each component program to one of its slots as
//! a `BPF_PROG_TYPE_EXT` (freplace) program; the dispatcher calls them in the order of their
//! run priority and goes on to the next one when a program returns an action in its
//! chain-call set (`XDP_PASS` by default). synack's program returns `XDP_PASS` for every
//! frame it does not claim, so those reach the programs after it. The dispatcher and the
//! links of its components are pinned in bpffs (`<bpffs>/xdp/dispatch-<ifindex>-<id>/`),
//! which is how xdp-loader and other libxdp users see one shared chain.
//!
//! Maps: the component is loaded by libbpf from the same embedded object that aya parsed,
//! with every map replaced by aya's (`bpf_map__reuse_fd` before libxdp loads the object),
//! so `io::bpf` reads and writes the maps the attached program uses through its one aya
//! code path (including the `BPF_F_MMAPABLE` occupancy filter).
//!
//! Where the kernel refuses freplace programs, libxdp attaches the program alone ("legacy"
//! mode, through netlink); [`Chain::legacy`] tells.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};

use crate::io::XdpMode;

/// The name libxdp gives its dispatcher program (`xdp-dispatcher.c`).
pub const DISPATCHER_NAME: &str = "xdp_dispatcher";

/// Run priority of synack's program in the dispatcher: below libxdp's default (50, what
/// programs without run-config metadata get), so synack claims its frames first and the
/// frames it passes go on to the others.
pub const RUN_PRIORITY: c_uint = 10;

/// `enum xdp_attach_mode` (xdp/libxdp.h).
const XDP_MODE_NATIVE: c_uint = 1;
const XDP_MODE_SKB: c_uint = 2;

/// `XDP_PASS` (`enum xdp_action`).
const XDP_PASS: c_uint = 2;

/// `BPF_FS_MAGIC` (linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// libxdp's environment variable for the bpffs directory (`XDP_BPFFS_ENVVAR`).
const BPFFS_ENV: &str = "LIBXDP_BPFFS";

/// Where libxdp looks for bpffs without [`BPFFS_ENV`].
const BPFFS_DEFAULT: &str = "/sys/fs/bpf";

/// Opaque libbpf / libxdp objects.
type Obj = c_void;

/// The libbpf and libxdp functions synack calls, resolved once.
struct Api {
    open_mem: unsafe extern "C" fn(*const c_void, usize, *const c_void) -> *mut Obj,
    next_map: unsafe extern "C" fn(*const Obj, *const Obj) -> *mut Obj,
    map_name: unsafe extern "C" fn(*const Obj) -> *const c_char,
    reuse_fd: unsafe extern "C" fn(*mut Obj, c_int) -> c_int,
    object_close: unsafe extern "C" fn(*mut Obj),
    get_error: unsafe extern "C" fn(*const c_void) -> c_long,
    from_bpf_obj: unsafe extern "C" fn(*mut Obj, *const c_char) -> *mut Obj,
    set_run_prio: unsafe extern "C" fn(*mut Obj, c_uint),
    set_chain_call: unsafe extern "C" fn(*mut Obj, c_uint, bool),
    attach: unsafe extern "C" fn(*mut Obj, c_int, c_uint, c_uint) -> c_int,
    detach: unsafe extern "C" fn(*mut Obj, c_int, c_uint, c_uint) -> c_int,
    program_close: unsafe extern "C" fn(*mut Obj),
    program_id: unsafe extern "C" fn(*const Obj) -> u32,
    program_name: unsafe extern "C" fn(*const Obj) -> *const c_char,
    program_prio: unsafe extern "C" fn(*const Obj) -> c_uint,
    mp_from_ifindex: unsafe extern "C" fn(c_int) -> *mut Obj,
    mp_next_prog: unsafe extern "C" fn(*const Obj, *const Obj) -> *mut Obj,
    mp_is_legacy: unsafe extern "C" fn(*const Obj) -> bool,
    mp_mode: unsafe extern "C" fn(*const Obj) -> c_uint,
    mp_close: unsafe extern "C" fn(*mut Obj),
    mp_main_prog: unsafe extern "C" fn(*const Obj) -> *mut Obj,
    /// Keep the libraries mapped for as long as the function pointers above are used.
    _libs: (libloading::Library, libloading::Library),
}

/// libxdp and libbpf, loaded on first use (once per process).
fn api() -> anyhow::Result<&'static Api> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| load_api().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| {
            anyhow!(
                "xdp.attach = \"dispatcher\" needs libxdp at run time: {e}; install the \
                 package libxdp1 (apt-get install libxdp1 xdp-tools), or choose xdp.attach = \
                 \"exclusive\" or \"replace\""
            )
        })
}

fn load_api() -> anyhow::Result<Api> {
    // SAFETY: loading a shared library runs its initialisers; libxdp and libbpf (libxdp's
    // own dependency, already mapped by the first call) have no initialisers with
    // preconditions on the caller.
    let xdp = unsafe { libloading::Library::new("libxdp.so.1") }.context("loading libxdp.so.1")?;
    // SAFETY: as above.
    let bpf = unsafe { libloading::Library::new("libbpf.so.1") }.context("loading libbpf.so.1")?;
    macro_rules! sym {
        ($lib:expr, $name:literal) => {
            // SAFETY: the symbol is the libbpf/libxdp function of that name, whose C
            // prototype (bpf/libbpf.h, xdp/libxdp.h of libxdp 1.3) the field's type spells;
            // the pointer is used only while `_libs` keeps the library mapped.
            *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
                .with_context(|| format!("{} has no symbol {}", stringify!($lib), $name))?
        };
    }
    Ok(Api {
        open_mem: sym!(bpf, "bpf_object__open_mem"),
        next_map: sym!(bpf, "bpf_object__next_map"),
        map_name: sym!(bpf, "bpf_map__name"),
        reuse_fd: sym!(bpf, "bpf_map__reuse_fd"),
        object_close: sym!(bpf, "bpf_object__close"),
        get_error: sym!(xdp, "libxdp_get_error"),
        from_bpf_obj: sym!(xdp, "xdp_program__from_bpf_obj"),
        set_run_prio: sym!(xdp, "xdp_program__set_run_prio"),
        set_chain_call: sym!(xdp, "xdp_program__set_chain_call_enabled"),
        attach: sym!(xdp, "xdp_program__attach"),
        detach: sym!(xdp, "xdp_program__detach"),
        program_close: sym!(xdp, "xdp_program__close"),
        program_id: sym!(xdp, "xdp_program__id"),
        program_name: sym!(xdp, "xdp_program__name"),
        program_prio: sym!(xdp, "xdp_program__run_prio"),
        mp_from_ifindex: sym!(xdp, "xdp_multiprog__get_from_ifindex"),
        mp_next_prog: sym!(xdp, "xdp_multiprog__next_prog"),
        mp_is_legacy: sym!(xdp, "xdp_multiprog__is_legacy"),
        mp_mode: sym!(xdp, "xdp_multiprog__attach_mode"),
        mp_close: sym!(xdp, "xdp_multiprog__close"),
        mp_main_prog: sym!(xdp, "xdp_multiprog__main_prog"),
        _libs: (xdp, bpf),
    })
}

/// The errno of a libxdp/libbpf pointer result (0: a valid pointer), as
/// `libxdp_get_error`; a NULL without errno counts as ENOENT.
fn ptr_error(api: &Api, ptr: *const c_void) -> c_long {
    // SAFETY: libxdp_get_error only inspects the pointer value (NULL or ERR_PTR range).
    match unsafe { (api.get_error)(ptr) } {
        0 if ptr.is_null() => -c_long::from(libc::ENOENT),
        e => e,
    }
}

fn os_error(code: c_long) -> std::io::Error {
    std::io::Error::from_raw_os_error(code.unsigned_abs() as i32)
}

fn mode_flag(mode: XdpMode) -> c_uint {
    match mode {
        XdpMode::Generic => XDP_MODE_SKB,
        XdpMode::Native | XdpMode::Auto => XDP_MODE_NATIVE,
    }
}

/// The bpffs libxdp will use: `$LIBXDP_BPFFS` or /sys/fs/bpf. Without one libxdp cannot
/// share a dispatcher and silently attaches alone, so this is an error naming the fix.
pub fn check_bpffs() -> anyhow::Result<String> {
    let dir = std::env::var(BPFFS_ENV).unwrap_or_else(|_| BPFFS_DEFAULT.to_string());
    let c_dir = CString::new(dir.as_str()).context("LIBXDP_BPFFS contains a NUL byte")?;
    // SAFETY: an all-zero statfs is a valid buffer for statfs(2) to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_dir` is NUL-terminated and `st` writable, both for the whole call.
    let r = unsafe { libc::statfs(c_dir.as_ptr(), &mut st) };
    #[allow(clippy::useless_conversion)] // f_type is i64 on some targets, i32 on others
    let magic = i64::from(st.f_type);
    if r != 0 || magic != BPF_FS_MAGIC {
        bail!(
            "xdp.attach = \"dispatcher\": no bpffs at {dir}, where libxdp pins the dispatcher \
             and its programs so that every loader shares one chain; mount it (`mount -t bpf \
             bpf {dir}`) or point {BPFFS_ENV} at a mounted bpffs"
        );
    }
    Ok(dir)
}

/// One program of the chain on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProgram {
    /// Kernel program id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its run priority (lower runs first).
    pub priority: u32,
}

/// What libxdp finds on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The programs, in the order the dispatcher runs them (one, the attached program
    /// itself, when `legacy`).
    pub programs: Vec<ChainProgram>,
    /// No dispatcher: a single program attached directly.
    pub legacy: bool,
    /// The mode of the attachment.
    pub mode: XdpMode,
}

/// A `struct xdp_multiprog` of an interface, closed on drop.
struct Multiprog<'a> {
    api: &'a Api,
    mp: *mut Obj,
}

impl<'a> Multiprog<'a> {
    /// The interface's programs, `None` when it has none.
    fn of(api: &'a Api, ifindex: u32) -> anyhow::Result<Option<Multiprog<'a>>> {
        // SAFETY: plain call with an interface index; the result is checked below.
        let mp = unsafe { (api.mp_from_ifindex)(ifindex as c_int) };
        match ptr_error(api, mp) {
            0 => Ok(Some(Multiprog { api, mp })),
            e if e.unsigned_abs() == libc::ENOENT as u64 => Ok(None),
            e => Err(os_error(e)).context("libxdp: reading the XDP programs of the interface"),
        }
    }

    /// The component programs (the attached one in legacy mode), in run order.
    fn programs(&self) -> Vec<*mut Obj> {
        if self.legacy() {
            // SAFETY: `self.mp` is a live multiprog; the program is owned by it.
            let main = unsafe { (self.api.mp_main_prog)(self.mp) };
            return if ptr_error(self.api, main) == 0 {
                vec![main]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::new();
        let mut cur: *mut Obj = std::ptr::null_mut();
        loop {
            // SAFETY: `self.mp` is a live multiprog and `cur` NULL or one of its programs.
            cur = unsafe { (self.api.mp_next_prog)(cur, self.mp) };
            if ptr_error(self.api, cur) != 0 {
                return out;
            }
            out.push(cur);
        }
    }

    fn describe(&self, prog: *const Obj) -> ChainProgram {
        // SAFETY: `prog` belongs to `self.mp`, which is live; the name is NUL-terminated
        // and owned by the program.
        unsafe {
            let name = (self.api.program_name)(prog);
            ChainProgram {
                id: (self.api.program_id)(prog),
                name: if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                },
                priority: (self.api.program_prio)(prog),
            }
        }
    }

    fn legacy(&self) -> bool {
        // SAFETY: `self.mp` is a live multiprog.
        unsafe { (self.api.mp_is_legacy)(self.mp) }
    }

    fn chain(&self) -> Chain {
        // SAFETY: `self.mp` is a live multiprog.
        let mode = unsafe { (self.api.mp_mode)(self.mp) };
        Chain {
            programs: self
                .programs()
                .into_iter()
                .map(|p| self.describe(p))
                .collect(),
            legacy: self.legacy(),
            mode: if mode == XDP_MODE_SKB {
                XdpMode::Generic
            } else {
                XdpMode::Native
            },
        }
    }
}

impl Drop for Multiprog<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.mp` came from xdp_multiprog__get_from_ifindex and is closed once.
        unsafe { (self.api.mp_close)(self.mp) };
    }
}

/// The libxdp view of interface `ifindex`: `None` when it has no XDP program.
pub fn chain(ifindex: u32) -> anyhow::Result<Option<Chain>> {
    let api = api()?;
    Ok(Multiprog::of(api, ifindex)?.map(|mp| mp.chain()))
}

/// Remove the component `id` from the dispatcher of `ifindex` (libxdp rebuilds the
/// dispatcher without it; the other programs stay).
pub fn detach_program(ifindex: u32, id: u32) -> anyhow::Result<()> {
    let api = api()?;
    let mp = Multiprog::of(api, ifindex)?.context("the interface has no XDP program")?;
    let chain = mp.chain();
    let prog = mp
        .programs()
        .into_iter()
        .find(|p| mp.describe(*p).id == id)
        .with_context(|| format!("program id {id} is not in the chain"))?;
    // SAFETY: `prog` belongs to the live `mp`; libxdp detaches it from that interface.
    let rc = unsafe { (api.detach)(prog, ifindex as c_int, mode_flag(chain.mode), 0) };
    if rc != 0 {
        return Err(os_error(rc.into()))
            .with_context(|| format!("libxdp: detaching program id {id}"));
    }
    Ok(())
}

/// synack's program attached through libxdp. Dropping it detaches only this program.
pub struct Component {
    api: &'static Api,
    obj: *mut Obj,
    prog: *mut Obj,
    ifindex: u32,
    mode: XdpMode,
}

// SAFETY: the libbpf object and the libxdp program are plain heap objects with no thread
// affinity; `Component` owns them alone and never shares the pointers.
unsafe impl Send for Component {}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// Open `object` (the embedded BPF ELF), make its maps those of `maps` (by name, all
    /// of them), and attach its XDP program to `ifindex` in `mode` (`Native` or
    /// `Generic`) through libxdp, with [`RUN_PRIORITY`] and `XDP_PASS` chaining.
    pub fn attach(
        object: &'static [u8],
        maps: &[(String, BorrowedFd<'_>)],
        ifindex: u32,
        mode: XdpMode,
    ) -> anyhow::Result<Component> {
        let api = api()?;
        // SAFETY: `object` is 'static, so it outlives the bpf_object that points into it;
        // NULL opts are allowed.
        let obj = unsafe { (api.open_mem)(object.as_ptr().cast(), object.len(), std::ptr::null()) };
        let e = ptr_error(api, obj);
        if e != 0 {
            return Err(os_error(e)).context("libbpf: opening the XDP object");
        }
        let mut comp = Component {
            api,
            obj,
            prog: std::ptr::null_mut(),
            ifindex,
            mode,
        };
        comp.share_maps(maps)?;
        // SAFETY: `obj` is a live, unloaded bpf_object; NULL selects its first program.
        let prog = unsafe { (api.from_bpf_obj)(obj, std::ptr::null()) };
        let e = ptr_error(api, prog);
        if e != 0 {
            return Err(os_error(e)).context("libxdp: no XDP program in the object");
        }
        // SAFETY: `prog` is a live xdp_program; these only set fields of it.
        unsafe {
            (api.set_run_prio)(prog, RUN_PRIORITY);
            (api.set_chain_call)(prog, XDP_PASS, true);
        }
        // SAFETY: `prog` is live; libxdp loads the object and attaches it.
        let rc = unsafe { (api.attach)(prog, ifindex as c_int, mode_flag(mode), 0) };
        comp.prog = prog;
        if rc != 0 {
            // Not attached: closing must not detach (the Drop below would).
            // SAFETY: `prog` is live and closed once; `obj` is closed by Drop.
            unsafe { (api.program_close)(prog) };
            comp.prog = std::ptr::null_mut();
            return Err(os_error(rc.into())).context("libxdp: attaching the XDP program");
        }
        Ok(comp)
    }

    /// `bpf_map__reuse_fd` for every map of the object, from `maps` by name.
    fn share_maps(&mut self, maps: &[(String, BorrowedFd<'_>)]) -> anyhow::Result<()> {
        let mut map: *mut Obj = std::ptr::null_mut();
        loop {
            // SAFETY: `self.obj` is live and `map` NULL or one of its maps.
            map = unsafe { (self.api.next_map)(self.obj, map) };
            if map.is_null() {
                return Ok(());
            }
            // SAFETY: `map` is live; libbpf owns the NUL-terminated name.
            let name = unsafe { CStr::from_ptr((self.api.map_name)(map)) }
                .to_string_lossy()
                .into_owned();
            let fd = maps
                .iter()
                .find(|(n, _)| *n == name)
                .with_context(|| format!("map {name} of the XDP object was not created"))?
                .1;
            // SAFETY: `map` is live and unloaded; libbpf duplicates `fd`, which stays open
            // for the call.
            let rc = unsafe { (self.api.reuse_fd)(map, fd.as_raw_fd()) };
            if rc != 0 {
                return Err(os_error(rc.into()))
                    .with_context(|| format!("libbpf: sharing map {name} with libxdp"));
            }
        }
    }

    /// The kernel id of the attached program.
    pub fn id(&self) -> u32 {
        // SAFETY: `self.prog` is a live, attached xdp_program.
        unsafe { (self.api.program_id)(self.prog) }
    }

    /// The interface's chain as libxdp sees it now.
    pub fn chain(&self) -> anyhow::Result<Chain> {
        chain(self.ifindex)?.context("libxdp finds no XDP program after attaching")
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        if !self.prog.is_null() {
            // SAFETY: `self.prog` is live and attached to `self.ifindex` in `self.mode`.
            let rc = unsafe {
                (self.api.detach)(self.prog, self.ifindex as c_int, mode_flag(self.mode), 0)
            };
            if rc != 0 {
                tracing::warn!(
                    error = %os_error(rc.into()),
                    "libxdp could not detach synack's XDP program (see `xdp-loader status`)"
                );
            }
            // SAFETY: closed once; the object is closed separately (from_bpf_obj leaves it
            // to the caller).
            unsafe { (self.api.program_close)(self.prog) };
        }
        // SAFETY: `self.obj` came from bpf_object__open_mem and is closed once.
        unsafe { (self.api.object_close)(self.obj) };
    }
}
