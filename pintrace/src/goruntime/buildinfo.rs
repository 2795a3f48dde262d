//! Go build info: the blob the Go linker writes into `.go.buildinfo`, and the
//! module-info text inside it (what `go version -m` prints).
//!
//! Format (Go's `debug/buildinfo`): a 32-byte header at a 16-byte boundary,
//! `"\xff Go buildinf:"` (14 bytes), the pointer size (1 byte) and flags
//! (1 byte). With flag 2 (Go ≥ 1.18) the Go version and the module info
//! follow the header as uvarint-length-prefixed strings. Without it (older
//! Go) the header holds pointers to the two strings; this reader does not
//! follow them and says the version is unknown.
//!
//! Everything here is pure and never panics on malformed bytes.
use std::fmt;

/// The magic that starts the build info blob.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const ALIGN: usize = 16;
const FLAG_INLINE: u8 = 2;
/// The module info is framed by two 16-byte sentinels (cmd/go's
/// `modload.infoStart` and `infoEnd`).
const SENTINEL_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildInfoError {
    #[error("no Go build info (no \"\\xff Go buildinf:\" header)")]
    NoHeader,
    #[error("Go build info from before Go 1.18 (pointer format, {ptr_size}-byte pointers): Go version unknown")]
    PointerFormat { ptr_size: u8 },
    #[error("Go build info is truncated or corrupt: the Go version string does not fit")]
    BadVersion,
    #[error("Go build info has an empty Go version")]
    EmptyVersion,
}

/// What a Go binary says about how it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The toolchain, as `runtime.Version()` says it: "go1.26.6".
    pub go_version: String,
    /// The main package's import path (`path` line); "command-line-arguments"
    /// for `go build file.go`.
    pub path: String,
    /// The main module (`mod` line); None in GOPATH mode.
    pub main: Option<Module>,
    /// Dependency modules (`dep` lines).
    pub deps: Vec<Module>,
    /// `build` lines in order: `-buildmode`, `-ldflags`, `CGO_ENABLED`,
    /// `DefaultGODEBUG`, `GOARCH`, `GOOS`, `GOAMD64`, `vcs.*` ...
    pub settings: Vec<BuildSetting>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
    /// Set by a `=>` line after this module's line.
    pub replace: Option<Box<Module>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSetting {
    pub key: String,
    pub value: String,
}

impl BuildInfo {
    /// The value of the last `build` setting `key`.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.iter().rev().find(|s| s.key == key).map(|s| s.value.as_str())
    }

    /// `-buildmode`: "exe", "pie", ...
    pub fn build_mode(&self) -> Option<&str> {
        self.setting("-buildmode")
    }

    /// `CGO_ENABLED` as the build saw it.
    pub fn cgo_enabled(&self) -> Option<bool> {
        match self.setting("CGO_ENABLED")? {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        }
    }

    pub fn goos(&self) -> Option<&str> {
        self.setting("GOOS")
    }

    pub fn goarch(&self) -> Option<&str> {
        self.setting("GOARCH")
    }

    /// `DefaultGODEBUG`: the GODEBUG defaults compiled in (from the main
    /// module's `go` line and `//go:debug` directives), "a=1,b=0".
    pub fn default_godebug(&self) -> Option<&str> {
        self.setting("DefaultGODEBUG")
    }

    /// One GODEBUG default compiled into the binary, e.g.
    /// `godebug_default("containermaxprocs") == Some("0")` when
    /// container-aware GOMAXPROCS was turned off at build time.
    pub fn godebug_default(&self, name: &str) -> Option<&str> {
        self.default_godebug()?.split(',').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// (major, minor) of the Go release: "go1.26.6" → (1, 26); None for
    /// development builds ("devel ...").
    pub fn go_release(&self) -> Option<(u32, u32)> {
        let v = self.go_version.strip_prefix("go")?;
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
}

impl fmt::Display for BuildSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Finds the build info blob in `data` (the `.go.buildinfo` section, or the
/// start of the first writable segment): the magic at a 16-byte boundary
/// with a whole header after it. Returns the blob from its header on.
pub fn find_blob(data: &[u8]) -> Option<&[u8]> {
    (0..data.len()).step_by(ALIGN).map(|i| &data[i..]).find(|rest| rest.len() >= HEADER_LEN && rest.starts_with(MAGIC))
}

/// Reads the Go version and the module info text (sentinels removed; empty
/// when the binary has none) from a blob that starts with the header.
pub fn parse_blob(blob: &[u8]) -> Result<(String, String), BuildInfoError> {
    if blob.len() < HEADER_LEN || !blob.starts_with(MAGIC) {
        return Err(BuildInfoError::NoHeader);
    }
    let ptr_size = blob[14];
    let flags = blob[15];
    if flags & FLAG_INLINE == 0 {
        return Err(BuildInfoError::PointerFormat { ptr_size });
    }
    let (version, rest) = decode_string(&blob[HEADER_LEN..]).ok_or(BuildInfoError::BadVersion)?;
    if version.is_empty() {
        return Err(BuildInfoError::EmptyVersion);
    }
    // Like Go: a module string that does not fit is treated as absent.
    let modinfo = decode_string(rest).map(|(m, _)| strip_sentinels(m)).unwrap_or_default();
    Ok((String::from_utf8_lossy(version).into_owned(), String::from_utf8_lossy(modinfo).into_owned()))
}

/// Finds and parses the build info in `data` (see `find_blob`).
pub fn parse(data: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    let blob = find_blob(data).ok_or(BuildInfoError::NoHeader)?;
    let (go_version, modinfo) = parse_blob(blob)?;
    Ok(BuildInfo { go_version, ..parse_modinfo(&modinfo) })
}

fn strip_sentinels(m: &[u8]) -> &[u8] {
    // Go's test: at least 33 bytes and a newline just before the end sentinel.
    if m.len() > 2 * SENTINEL_LEN && m[m.len() - SENTINEL_LEN - 1] == b'\n' {
        &m[SENTINEL_LEN..m.len() - SENTINEL_LEN]
    } else {
        &[]
    }
}

/// A uvarint (LEB128), as Go's `binary.Uvarint`: None when truncated or
/// longer than 64 bits. Returns the value and the bytes it took.
fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        if i == 9 && b > 1 {
            return None;
        }
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// A uvarint-length-prefixed string and what follows it.
fn decode_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, n) = uvarint(data)?;
    let rest = &data[n..];
    let len = usize::try_from(len).ok().filter(|&l| l <= rest.len())?;
    Some(rest.split_at(len))
}

/// Parses module info text (`path`, `mod`, `dep`, `=>` and `build` lines,
/// tab-separated; Go's `debug.ParseBuildInfo`). Malformed lines are skipped,
/// so one bad line never hides the rest.
pub fn parse_modinfo(text: &str) -> BuildInfo {
    let mut bi = BuildInfo::default();
    // Which module a `=>` line replaces: None, the main module, or a dep.
    enum Last {
        None,
        Main,
        Dep,
    }
    let mut last = Last::None;
    for line in text.lines() {
        let Some((word, rest)) = line.split_once('\t') else { continue };
        match word {
            "path" => bi.path = rest.to_string(),
            "mod" => {
                bi.main = module_line(rest);
                last = if bi.main.is_some() { Last::Main } else { Last::None };
            }
            "dep" => match module_line(rest) {
                Some(m) => {
                    bi.deps.push(m);
                    last = Last::Dep;
                }
                None => last = Last::None,
            },
            "=>" => {
                let cols: Vec<&str> = rest.split('\t').collect();
                let target = match last {
                    Last::Main => bi.main.as_mut(),
                    Last::Dep => bi.deps.last_mut(),
                    Last::None => None,
                };
                if let (Some(m), [path, version, sum]) = (target, cols.as_slice()) {
                    m.replace = Some(Box::new(Module {
                        path: path.to_string(),
                        version: version.to_string(),
                        sum: sum.to_string(),
                        replace: None,
                    }));
                }
                last = Last::None;
            }
            "build" => {
                if let Some(s) = build_line(rest) {
                    bi.settings.push(s);
                }
            }
            _ => {}
        }
    }
    bi
}

fn module_line(rest: &str) -> Option<Module> {
    let cols: Vec<&str> = rest.split('\t').collect();
    match cols.as_slice() {
        [path, version] => Some(Module { path: path.to_string(), version: version.to_string(), ..Module::default() }),
        [path, version, sum] => {
            Some(Module { path: path.to_string(), version: version.to_string(), sum: sum.to_string(), replace: None })
        }
        _ => None,
    }
}

/// `KEY=VALUE`, where either may be a Go-quoted string.
fn build_line(kv: &str) -> Option<BuildSetting> {
    let (key, raw_value) = if kv.starts_with(['"', '`']) {
        let (key, rest) = unquote_prefix(kv)?;
        (key, rest.strip_prefix('=')?)
    } else {
        let (key, value) = kv.split_once('=')?;
        (key.to_string(), value)
    };
    if key.is_empty() {
        return None;
    }
    let value = if raw_value.starts_with(['"', '`']) {
        match unquote_prefix(raw_value)? {
            (v, "") => v,
            _ => return None,
        }
    } else {
        raw_value.to_string()
    };
    Some(BuildSetting { key, value })
}

/// Unquotes the Go string literal (`"..."` with escapes, or `` `...` ``) at
/// the start of `s`; returns it and the text after the closing quote.
fn unquote_prefix(s: &str) -> Option<(String, &str)> {
    if let Some(raw) = s.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw[..end].replace('\r', ""), &raw[end + 1..]));
    }
    let body = s.strip_prefix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &body[i + 1..])),
            b'\n' => return None,
            b'\\' => {
                let esc = *bytes.get(i + 1)?;
                i += 2;
                let simple = match esc {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' | b'"' | b'\'' => Some(esc),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    continue;
                }
                let (digits, radix) = match esc {
                    b'x' => (2, 16),
                    b'u' => (4, 16),
                    b'U' => (8, 16),
                    b'0'..=b'7' => {
                        i -= 1;
                        (3, 8)
                    }
                    _ => return None,
                };
                let text = body.get(i..i + digits)?;
                let v = u32::from_str_radix(text, radix).ok()?;
                i += digits;
                match esc {
                    b'u' | b'U' => out.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut [0; 4]).as_bytes()),
                    _ => out.push(u8::try_from(v).ok()?),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &[u8; 16] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8; 16] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A blob as the Go ≥ 1.18 linker writes it.
    fn blob(version: &str, modinfo: Option<&str>) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(FLAG_INLINE);
        b.resize(HEADER_LEN, 0);
        varint(version.len(), &mut b);
        b.extend_from_slice(version.as_bytes());
        let mut m = Vec::new();
        if let Some(text) = modinfo {
            m.extend_from_slice(START);
            m.extend_from_slice(text.as_bytes());
            m.extend_from_slice(END);
        }
        varint(m.len(), &mut b);
        b.extend_from_slice(&m);
        b
    }

    const MODINFO: &str = "path\tpintrace.test/maxprocs\n\
        mod\tpintrace.test/maxprocs\t(devel)\t\n\
        dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n\
        =>\t../sys\t(devel)\t\n\
        build\t-buildmode=pie\n\
        build\t-compiler=gc\n\
        build\t-ldflags=\"-s -w\"\n\
        build\tDefaultGODEBUG=containermaxprocs=0,updatemaxprocs=0,x509sha1=1\n\
        build\tCGO_ENABLED=0\n\
        build\tGOARCH=amd64\n\
        build\tGOOS=linux\n\
        build\t\"odd key\"=`raw value`\n";

    #[test]
    fn parses_what_the_linker_writes() {
        let mut data = vec![0u8; 48]; // the blob need not be first, only aligned
        data.extend(blob("go1.26.6", Some(MODINFO)));
        data.extend([0u8; 7]);
        let bi = parse(&data).expect("build info");
        assert_eq!(bi.go_version, "go1.26.6");
        assert_eq!(bi.go_release(), Some((1, 26)));
        assert_eq!(bi.path, "pintrace.test/maxprocs");
        let main = bi.main.as_ref().expect("main module");
        assert_eq!(
            (main.path.as_str(), main.version.as_str(), main.sum.as_str()),
            ("pintrace.test/maxprocs", "(devel)", "")
        );
        assert_eq!(bi.deps.len(), 1);
        assert_eq!(bi.deps[0].sum, "h1:abc=");
        assert_eq!(bi.deps[0].replace.as_ref().expect("replacement").path, "../sys");
        assert_eq!(bi.build_mode(), Some("pie"));
        assert_eq!(bi.setting("-ldflags"), Some("-s -w"));
        assert_eq!(bi.cgo_enabled(), Some(false));
        assert_eq!((bi.goos(), bi.goarch()), (Some("linux"), Some("amd64")));
        assert_eq!(bi.godebug_default("containermaxprocs"), Some("0"));
        assert_eq!(bi.godebug_default("x509sha1"), Some("1"));
        assert_eq!(bi.godebug_default("nope"), None);
        assert_eq!(bi.setting("odd key"), Some("raw value"));
    }

    #[test]
    fn gopath_build_has_a_version_and_no_modules() {
        let bi = parse(&blob("go1.19.8", None)).expect("build info");
        assert_eq!(bi.go_version, "go1.19.8");
        assert_eq!(bi, BuildInfo { go_version: "go1.19.8".into(), ..BuildInfo::default() });
    }

    #[test]
    fn misaligned_or_missing_magic_is_no_header() {
        assert_eq!(parse(&[]), Err(BuildInfoError::NoHeader));
        assert_eq!(parse(b"hello"), Err(BuildInfoError::NoHeader));
        let mut data = vec![0u8; 8]; // at offset 8: not a 16-byte boundary
        data.extend(blob("go1.26.6", None));
        assert_eq!(parse(&data), Err(BuildInfoError::NoHeader));
        // The magic alone, without the rest of the 32-byte header.
        let mut data = MAGIC.to_vec();
        data.extend([8, 2, 0, 0]);
        assert_eq!(parse(&data), Err(BuildInfoError::NoHeader));
    }

    #[test]
    fn pointer_format_is_unknown_not_guessed() {
        let mut b = blob("go1.17", None);
        b[15] = 0; // little endian, pointers
        assert_eq!(parse(&b), Err(BuildInfoError::PointerFormat { ptr_size: 8 }));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix_never_a_panic() {
        let full = blob("go1.26.6", Some(MODINFO));
        let version_end = HEADER_LEN + 1 + "go1.26.6".len();
        for n in 0..full.len() {
            match parse(&full[..n]) {
                Ok(bi) => {
                    // Once the version fits, a cut module string reads as absent.
                    assert!(n >= version_end, "{n}");
                    assert_eq!(bi.go_version, "go1.26.6");
                    assert!(bi.main.is_none() && bi.settings.is_empty(), "{n}: {bi:?}");
                }
                Err(e) => assert!(n < version_end, "{n}: {e}"),
            }
        }
        assert!(parse(&full).expect("build info").main.is_some());
    }

    #[test]
    fn garbage_after_the_header_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300 {
            for _ in 0..20 {
                let mut b = MAGIC.to_vec();
                b.extend([8, 2]);
                for _ in 0..len {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b.push(seed as u8);
                }
                let _ = parse(&b);
                let _ = parse_modinfo(&String::from_utf8_lossy(&b));
            }
        }
        // A length that overflows, and one longer than 64 bits.
        let mut b = blob("", None);
        b.truncate(HEADER_LEN);
        b.extend([0xff; 9]);
        b.push(0x01);
        assert_eq!(parse(&b), Err(BuildInfoError::BadVersion));
        b.truncate(HEADER_LEN);
        b.extend([0xff; 10]);
        assert_eq!(parse(&b), Err(BuildInfoError::BadVersion));
        assert_eq!(parse(&blob("", None)), Err(BuildInfoError::EmptyVersion));
    }

    #[test]
    fn module_info_without_sentinels_is_ignored() {
        // Too short to hold two sentinels, or no newline before the end one.
        let mut b = blob("go1.26.6", None);
        b.truncate(HEADER_LEN + 9);
        b.push(40);
        b.extend([b'x'; 40]);
        let bi = parse(&b).expect("build info");
        assert_eq!((bi.go_version.as_str(), bi.path.as_str()), ("go1.26.6", ""));
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let bi = parse_modinfo(
            "path\tp\nmod\tonly-one-column\n=>\tdangling\tv\ts\ndep\ta\tv1\tsum\textra\nbuild\tnoequals\n\
             build\t=v\nbuild\t\"unterminated=1\nbuild\tk=\"bad\\q\"\nbuild\tk2=\"a\\tb\\x41\\u00e9\\101\"\n\
             garbage\nbuild\tGOOS=linux\n",
        );
        assert_eq!(bi.path, "p");
        assert!(bi.main.is_none() && bi.deps.is_empty());
        assert_eq!(
            bi.settings,
            vec![
                BuildSetting { key: "k2".into(), value: "a\tbAéA".into() },
                BuildSetting { key: "GOOS".into(), value: "linux".into() },
            ]
        );
    }

    #[test]
    fn release_numbers() {
        let v = |s: &str| BuildInfo { go_version: s.into(), ..BuildInfo::default() }.go_release();
        assert_eq!(v("go1.19.8"), Some((1, 19)));
        assert_eq!(v("go1.25rc1"), Some((1, 25)));
        assert_eq!(v("go1.26.6 X:nocoverageredesign"), Some((1, 26)));
        assert_eq!(v("devel go1.27-abc"), None);
        assert_eq!(v(""), None);
    }
}
