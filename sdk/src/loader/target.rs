//! Which CPU and operating system a library was built for, read from its
//! header, so a library for another machine gets a plain reason ("built for
//! aarch64, this host is x86_64") before the dynamic loader gives its
//! cryptic one, and a release bundle cannot ship a library under the wrong
//! target triple.

use std::fmt;

/// What a library's header says it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LibraryTarget {
    /// `linux` for any ELF system, `macos` for Mach-O.
    pub os: &'static str,
    /// The CPU, named as [`std::env::consts::ARCH`] names it: `x86_64`,
    /// `aarch64`, `x86`, `arm`, `riscv64`, `riscv32`, `powerpc64`, `s390x`,
    /// or `unknown`.
    pub arch: &'static str,
}

const ELF: &[u8] = b"\x7fELF";
const MACH_O_64: [u8; 4] = [0xcf, 0xfa, 0xed, 0xfe];
const MACH_O_32: [u8; 4] = [0xce, 0xfa, 0xed, 0xfe];
const MACH_O_FAT: [u8; 4] = [0xca, 0xfe, 0xba, 0xbe];
const MACH_O_FAT_64: [u8; 4] = [0xca, 0xfe, 0xba, 0xbf];

impl LibraryTarget {
    /// The target of a library with these leading bytes (its ELF or thin
    /// Mach-O header); `None` for other files and for universal Mach-O
    /// binaries, which hold several (see [`LibraryTarget::all_of`]).
    pub fn of(bytes: &[u8]) -> Option<LibraryTarget> {
        if bytes.len() >= 20 && bytes.starts_with(ELF) {
            let field = [bytes[18], bytes[19]];
            // EI_DATA: 1 is little-endian, 2 big-endian.
            let machine = if bytes[5] == 2 {
                u16::from_be_bytes(field)
            } else {
                u16::from_le_bytes(field)
            };
            // EI_CLASS: 2 is a 64-bit file.
            let wide = bytes[4] == 2;
            let arch = match machine {
                0x3e => "x86_64",
                0xb7 => "aarch64",
                0x03 => "x86",
                0x28 => "arm",
                0xf3 if wide => "riscv64",
                0xf3 => "riscv32",
                0x15 => "powerpc64",
                0x16 => "s390x",
                _ => "unknown",
            };
            return Some(LibraryTarget { os: "linux", arch });
        }
        if bytes.len() >= 8 && (bytes.starts_with(&MACH_O_64) || bytes.starts_with(&MACH_O_32)) {
            let cpu = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            return Some(LibraryTarget {
                os: "macos",
                arch: mach_o_arch(cpu),
            });
        }
        None
    }

    /// Every target a library holds: one for ELF and thin Mach-O, one per
    /// slice for a universal Mach-O binary, none for other files.
    pub fn all_of(bytes: &[u8]) -> Vec<LibraryTarget> {
        if let Some(target) = LibraryTarget::of(bytes) {
            return vec![target];
        }
        let entry_size = if bytes.starts_with(&MACH_O_FAT) {
            20
        } else if bytes.starts_with(&MACH_O_FAT_64) {
            32
        } else {
            return Vec::new();
        };
        let read_u32 = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let count = read_u32(4).unwrap_or(0).min(64) as usize;
        (0..count)
            .filter_map(|i| read_u32(8 + i * entry_size))
            .map(|cpu| LibraryTarget {
                os: "macos",
                arch: mach_o_arch(cpu),
            })
            .collect()
    }

    /// The machine this code runs on.
    pub fn this_machine() -> LibraryTarget {
        LibraryTarget {
            os: if cfg!(target_os = "macos") {
                "macos"
            } else {
                "linux"
            },
            arch: std::env::consts::ARCH,
        }
    }

    /// What a target triple's library must be built for:
    /// `aarch64-unknown-linux-gnu` is `aarch64` on `linux`,
    /// `x86_64-apple-darwin` is `x86_64` on `macos`. `None` for a triple
    /// whose CPU is not one Vigilo can tell from a header, or whose system
    /// loads neither ELF nor Mach-O libraries (Windows).
    pub fn from_triple(triple: &str) -> Option<LibraryTarget> {
        let cpu = triple.split('-').next().unwrap_or_default();
        let arch = match cpu {
            "x86_64" | "x86_64h" => "x86_64",
            "aarch64" | "arm64" | "arm64e" => "aarch64",
            "x86" | "i386" | "i486" | "i586" | "i686" => "x86",
            "powerpc64" | "powerpc64le" => "powerpc64",
            "s390x" => "s390x",
            cpu if cpu.starts_with("riscv64") => "riscv64",
            cpu if cpu.starts_with("riscv32") => "riscv32",
            cpu if cpu.starts_with("arm") || cpu.starts_with("thumb") => "arm",
            _ => return None,
        };
        if triple.contains("windows") {
            return None;
        }
        let os = if triple.contains("-apple-") {
            "macos"
        } else {
            "linux"
        };
        Some(LibraryTarget { os, arch })
    }

    /// The kind of file this target's libraries are: `Linux (ELF)` or
    /// `macOS (Mach-O)`.
    pub fn format(&self) -> &'static str {
        if self.os == "macos" {
            "macOS (Mach-O)"
        } else {
            "Linux (ELF)"
        }
    }

    /// Why a library built for `self` cannot run on `machine`, if it
    /// cannot: `"built for aarch64, this host is x86_64"`.
    pub fn mismatch(&self, machine: &LibraryTarget) -> Option<String> {
        if self.os != machine.os {
            return Some(format!(
                "built for {} on {}, this host is {} on {}",
                self.arch,
                self.format(),
                machine.arch,
                machine.format()
            ));
        }
        (self.arch != machine.arch)
            .then(|| format!("built for {}, this host is {}", self.arch, machine.arch))
    }
}

impl fmt::Display for LibraryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.arch, self.format())
    }
}

fn mach_o_arch(cpu: u32) -> &'static str {
    match cpu {
        0x0100_0007 => "x86_64",
        0x0100_000c => "aarch64",
        0x0000_0007 => "x86",
        0x0000_000c => "arm",
        _ => "unknown",
    }
}

/// Whether these leading bytes look like a shared library of any platform
/// (ELF, Mach-O, or a Windows PE file, which the loader then refuses by
/// name).
pub(crate) fn looks_like_shared_library(bytes: &[u8]) -> bool {
    [ELF, &MACH_O_64, &MACH_O_32, &MACH_O_FAT, b"MZ"]
        .iter()
        .any(|magic| bytes.starts_with(magic))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header for `machine`, 64-bit little-endian.
    fn elf(machine: u16) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(ELF);
        header[4] = 2;
        header[5] = 1;
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header
    }

    #[test]
    fn reads_elf_and_mach_o_headers() {
        assert_eq!(
            LibraryTarget::of(&elf(0x3e)),
            Some(LibraryTarget {
                os: "linux",
                arch: "x86_64"
            })
        );
        assert_eq!(LibraryTarget::of(&elf(0xb7)).unwrap().arch, "aarch64");
        assert_eq!(LibraryTarget::of(&elf(0x1234)).unwrap().arch, "unknown");
        let mut big_endian = elf(0);
        big_endian[5] = 2;
        big_endian[18..20].copy_from_slice(&0x16u16.to_be_bytes());
        assert_eq!(LibraryTarget::of(&big_endian).unwrap().arch, "s390x");

        let mut thin = MACH_O_64.to_vec();
        thin.extend(0x0100_000cu32.to_le_bytes());
        assert_eq!(
            LibraryTarget::of(&thin),
            Some(LibraryTarget {
                os: "macos",
                arch: "aarch64"
            })
        );
        assert_eq!(LibraryTarget::of(b"hello"), None);
        assert!(LibraryTarget::all_of(b"hello").is_empty());

        let mut fat = MACH_O_FAT.to_vec();
        fat.extend(2u32.to_be_bytes());
        for cpu in [0x0100_0007u32, 0x0100_000c] {
            fat.extend(cpu.to_be_bytes());
            fat.extend([0u8; 16]);
        }
        assert_eq!(LibraryTarget::of(&fat), None);
        assert_eq!(
            LibraryTarget::all_of(&fat)
                .iter()
                .map(|t| t.arch)
                .collect::<Vec<_>>(),
            ["x86_64", "aarch64"]
        );
    }

    #[test]
    fn reads_target_triples() {
        let target = |triple| LibraryTarget::from_triple(triple).map(|t| (t.os, t.arch));
        assert_eq!(
            target("x86_64-unknown-linux-gnu"),
            Some(("linux", "x86_64"))
        );
        assert_eq!(
            target("aarch64-unknown-linux-musl"),
            Some(("linux", "aarch64"))
        );
        assert_eq!(target("aarch64-apple-darwin"), Some(("macos", "aarch64")));
        assert_eq!(target("x86_64-apple-darwin"), Some(("macos", "x86_64")));
        assert_eq!(
            target("armv7-unknown-linux-gnueabihf"),
            Some(("linux", "arm"))
        );
        assert_eq!(
            target("riscv64gc-unknown-linux-gnu"),
            Some(("linux", "riscv64"))
        );
        assert_eq!(target("i686-unknown-linux-gnu"), Some(("linux", "x86")));
        assert_eq!(target("x86-unknown-linux-gnu"), Some(("linux", "x86")));
        assert_eq!(target("x86_64-pc-windows-msvc"), None);
        assert_eq!(target("mips-unknown-linux-gnu"), None);
        assert_eq!(
            LibraryTarget::from_triple("x86_64-unknown-linux-gnu").map(|t| t.to_string()),
            Some("x86_64 Linux (ELF)".to_owned())
        );
    }

    #[test]
    fn names_both_sides_of_a_mismatch() {
        let linux = |arch| LibraryTarget { os: "linux", arch };
        assert_eq!(
            linux("aarch64").mismatch(&linux("x86_64")),
            Some("built for aarch64, this host is x86_64".to_owned())
        );
        assert_eq!(linux("x86_64").mismatch(&linux("x86_64")), None);
        let mac = LibraryTarget {
            os: "macos",
            arch: "aarch64",
        };
        assert_eq!(
            mac.mismatch(&linux("aarch64")),
            Some(
                "built for aarch64 on macOS (Mach-O), this host is aarch64 on Linux (ELF)"
                    .to_owned()
            )
        );
    }
}
