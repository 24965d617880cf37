// SPDX-License-Identifier: MIT
//! Owns: a generation as the caller gets it: page runs (first page, count)
//! merged across chunks and packets, and the same in bytes in Cloud
//! Hypervisor's shape (`vm-migration/src/protocol.rs`: `MemoryRange`,
//! `MemoryRangeTable`), so that a VMM can hand the table to its
//! migration code as is.

use crate::error::Error;

/// Dirty pages `first .. first + count` (page numbers: IOVA / page size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageRun {
    pub first: u64,
    pub count: u64,
}

impl PageRun {
    /// One past the last page.
    pub fn end(&self) -> u64 {
        self.first + self.count
    }
}

/// A range of guest memory in bytes, as Cloud Hypervisor's
/// `vm_migration::protocol::MemoryRange`.  `gpa` is the IOVA: a VMM that
/// maps guest memory into the IOAS at its guest physical address (as
/// Cloud Hypervisor and QEMU do) reads it as the guest physical address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemoryRange {
    pub gpa: u64,
    pub length: u64,
}

/// Ranges of guest memory, as Cloud Hypervisor's
/// `vm_migration::protocol::MemoryRangeTable` (the methods it has with the
/// same names and meanings, plus `iter()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryRangeTable {
    data: Vec<MemoryRange>,
}

impl MemoryRangeTable {
    /// The ranges, in increasing address order for a table from dirtyd.
    pub fn regions(&self) -> &[MemoryRange] {
        &self.data
    }
    /// The same as `regions()` (Cloud Hypervisor has both names).
    pub fn ranges(&self) -> &[MemoryRange] {
        &self.data
    }
    pub fn iter(&self) -> std::slice::Iter<'_, MemoryRange> {
        self.data.iter()
    }
    pub fn push(&mut self, range: MemoryRange) {
        self.data.push(range);
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn extend(&mut self, table: Self) {
        self.data.extend(table.data);
    }
    pub fn new_from_tables(tables: Vec<Self>) -> Self {
        let mut data = Vec::new();
        for t in tables {
            data.extend(t.data);
        }
        Self { data }
    }
    /// Bytes the table's entries take (16 per range), as Cloud
    /// Hypervisor's `length()`: not the memory they cover.
    pub fn length(&self) -> u64 {
        (std::mem::size_of::<MemoryRange>() * self.data.len()) as u64
    }
    /// Bytes of memory the ranges cover.
    pub fn effective_size(&self) -> u64 {
        self.data.iter().map(|r| r.length).sum()
    }
}

impl<'a> IntoIterator for &'a MemoryRangeTable {
    type Item = &'a MemoryRange;
    type IntoIter = std::slice::Iter<'a, MemoryRange>;
    fn into_iter(self) -> Self::IntoIter {
        self.data.iter()
    }
}

/// Page runs in increasing order, each run merged into the previous one
/// when it starts where that one ends (runs of two chunks, or of two
/// packets, that touch at a span's border).
#[derive(Clone, Debug, Default)]
pub(crate) struct RunList {
    pub(crate) runs: Vec<PageRun>,
    pub(crate) pages: u64,
}

impl RunList {
    /// Adds pages `first .. first + count`; they must come after every
    /// page added so far (section 9.4: the decoder checks the order).
    pub(crate) fn add(&mut self, first: u64, count: u64) -> Result<(), Error> {
        if count == 0 || first.checked_add(count).is_none() {
            return Err(Error::Malformed("a run overflows the page numbers".into()));
        }
        match self.runs.last_mut() {
            Some(last) if first < last.end() => {
                return Err(Error::Malformed(format!(
                    "page {:#x} comes again or out of order (after {:#x})",
                    first,
                    last.end()
                )))
            }
            Some(last) if first == last.end() => last.count += count,
            _ => self.runs.push(PageRun { first, count }),
        }
        self.pages += count;
        Ok(())
    }

    /// The runs in bytes; `Malformed` if a page's address does not fit in
    /// 64 bits.
    pub(crate) fn table(&self, page_size: u64) -> Result<MemoryRangeTable, Error> {
        let mut t = MemoryRangeTable::default();
        for r in &self.runs {
            let gpa = r.first.checked_mul(page_size);
            let length = r.count.checked_mul(page_size);
            match (gpa, length) {
                (Some(gpa), Some(length))
                    if length.checked_sub(1).and_then(|l| gpa.checked_add(l)).is_some() =>
                {
                    t.push(MemoryRange { gpa, length })
                }
                _ => {
                    return Err(Error::Malformed(format!(
                        "pages {:#x}+{} of {} bytes lie beyond 64-bit addresses",
                        r.first, r.count, page_size
                    )))
                }
            }
        }
        Ok(t)
    }
}
