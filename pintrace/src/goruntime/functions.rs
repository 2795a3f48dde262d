//! Code address → function name, over the ELF symbol table's function
//! symbols: a sorted vector and a binary search. Names share one string
//! buffer (a Go 1.26 hello-world has ~2,000 functions, a service tens of
//! thousands), so building the table is one allocation per few kilobytes.

/// The function symbols of one executable, by link-time address.
#[derive(Default, Clone)]
pub struct FunctionTable {
    /// Sorted by `start`.
    entries: Vec<Entry>,
    names: String,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    /// 0 when the symbol has no size: then it ends where the next begins.
    size: u64,
    name_at: u32,
    name_len: u32,
}

/// The count only: thousands of names help no one in a `{:?}`.
impl std::fmt::Debug for FunctionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionTable").field("functions", &self.entries.len()).finish()
    }
}

impl FunctionTable {
    /// From (address, size, name) of each function symbol, in any order.
    pub fn new<'a>(functions: impl IntoIterator<Item = (u64, u64, &'a str)>) -> FunctionTable {
        let mut t = FunctionTable::default();
        for (start, size, name) in functions {
            let (Ok(name_at), Ok(name_len)) = (u32::try_from(t.names.len()), u32::try_from(name.len())) else {
                break; // 4 GiB of names: not an executable we can use anyway
            };
            t.names.push_str(name);
            t.entries.push(Entry { start, size, name_at, name_len });
        }
        // Of symbols at the same address, keep the first seen (stable sort).
        t.entries.sort_by_key(|e| e.start);
        t.entries.dedup_by_key(|e| e.start);
        t
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The function whose code holds `addr` (a link-time address).
    pub fn at(&self, addr: u64) -> Option<&str> {
        let i = self.entries.partition_point(|e| e.start <= addr).checked_sub(1)?;
        let e = self.entries[i];
        let inside = if e.size > 0 {
            addr - e.start < e.size
        } else {
            self.entries.get(i + 1).is_some_and(|next| addr < next.start)
        };
        if !inside {
            return None;
        }
        self.names.get(e.name_at as usize..(e.name_at + e.name_len) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_function_holding_an_address() {
        let t = FunctionTable::new([
            (0x2000, 0x10, "runtime.sysmon"),
            (0x1000, 0x100, "runtime.main"),
            (0x2010, 0, "runtime.nosize"),
            (0x3000, 8, "main.pinnedWorker"),
        ]);
        assert_eq!(t.len(), 4);
        assert_eq!(t.at(0x0fff), None);
        assert_eq!(t.at(0x1000), Some("runtime.main"));
        assert_eq!(t.at(0x10ff), Some("runtime.main"));
        assert_eq!(t.at(0x1100), None, "past its size: a gap");
        assert_eq!(t.at(0x200f), Some("runtime.sysmon"));
        assert_eq!(t.at(0x2010), Some("runtime.nosize"));
        assert_eq!(t.at(0x2fff), Some("runtime.nosize"), "no size: up to the next symbol");
        assert_eq!(t.at(0x3007), Some("main.pinnedWorker"));
        assert_eq!(t.at(0x3008), None);
        assert_eq!(t.at(u64::MAX), None);
        assert_eq!(format!("{t:?}"), "FunctionTable { functions: 4 }");
    }

    #[test]
    fn empty_and_duplicate_addresses() {
        let t = FunctionTable::new([]);
        assert!(t.is_empty());
        assert_eq!(t.at(0), None);
        let t = FunctionTable::new([(0x10, 4, "a"), (0x10, 4, "alias"), (0x0, 0, "sizeless")]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.at(0x12), Some("a"));
        // A sizeless symbol ends where the next begins.
        assert_eq!(t.at(0xf), Some("sizeless"));
        let lone = FunctionTable::new([(0x10, 0, "lone")]);
        assert_eq!(lone.at(0x10), None, "a sizeless last symbol has no known end");
    }
}
