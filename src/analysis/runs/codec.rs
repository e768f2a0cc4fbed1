//! The binary records written to temporary folders when an analysis
//! outgrows memory (grouping's partitions, the sorted runs of
//! [`super`]): fixed-width little-endian ids and numbers, counts and times
//! as variable-length numbers ([`Enc::var`]: most are small, and a row's
//! eleven counters took 88 bytes of every group in every run), an absent
//! value as its flag alone, strings as a length and their bytes. Written
//! and read by this process only, so there is no version or schema; a
//! record that cannot be read back (the folder was cleaned up under us,
//! the disk is full) is an error naming the file, never a guess.

use std::io::{self, BufRead, Read};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::model::activity::{ActivityRow, Counters, Name};
use crate::model::{AccessType, Clause, Controls, Direction, EventType, Evidence, Guid, UserType};

/// Appends values to a record being built.
pub(crate) struct Enc<'a>(pub(crate) &'a mut Vec<u8>);

/// The top bit of a length [`Enc::flagged_bytes`] writes.
const FLAG: u32 = 1 << 31;

impl Enc<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// `v` as its position in `all` (a `u8`), as [`Dec::one_of`] reads it.
    pub(crate) fn one_of<T: PartialEq>(&mut self, all: &[T], v: T) {
        self.u8(all.iter().position(|x| *x == v).unwrap_or_default() as u8);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `v` in seven-bit groups, least significant first, each byte but the
    /// last with its high bit set (LEB128): 0-127 in one byte, any `u64`
    /// in at most ten.
    pub(crate) fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
    }
    /// Bytes as a length and the bytes, as [`Dec::bytes_onto`] reads them.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(&b[..b.len().min(u32::MAX as usize)]);
    }
    /// [`Enc::bytes`] of fewer than 2^31 bytes, with `flag` in the top bit
    /// of their length: what comes after them, told apart at no cost.
    pub(crate) fn flagged_bytes(&mut self, b: &[u8], flag: bool) {
        let len = u32::try_from(b.len()).ok().filter(|n| n & FLAG == 0);
        debug_assert!(len.is_some(), "{} flagged bytes", b.len());
        let len = len.unwrap_or(FLAG - 1);
        self.u32(len | if flag { FLAG } else { 0 });
        self.0.extend_from_slice(&b[..len as usize]);
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(v.is_some() as u8);
        if let Some(v) = v {
            self.var(v);
        }
    }
    pub(crate) fn opt_guid(&mut self, g: Option<Guid>) {
        self.u8(g.is_some() as u8);
        if let Some(g) = g {
            self.u128(g.0);
        }
    }
    pub(crate) fn time(&mut self, t: DateTime<Utc>) {
        // Seconds since 1970 (a time before it, as its two's complement:
        // ten bytes), then the nanoseconds (mostly none: one byte).
        self.var(t.timestamp() as u64);
        self.var(t.timestamp_subsec_nanos().into());
    }
    pub(crate) fn opt_time(&mut self, t: Option<DateTime<Utc>>) {
        self.u8(t.is_some() as u8);
        if let Some(t) = t {
            self.time(t);
        }
    }
    pub(crate) fn access(&mut self, a: AccessType) {
        self.one_of(&AccessType::ALL, a);
    }
    pub(crate) fn event_type(&mut self, e: EventType) {
        self.one_of(&EventType::ALL, e);
    }
    pub(crate) fn user_type(&mut self, t: Option<UserType>) {
        self.u8(match t {
            None => 0,
            Some(UserType::Member) => 1,
            Some(UserType::Guest) => 2,
            Some(UserType::Unknown) => 3,
        });
    }
    pub(crate) fn clauses(&mut self, clauses: &[Clause]) {
        self.var(clauses.len() as u64);
        for c in clauses {
            self.opt_guid(c.policy);
            self.u8(c.controls.bits());
            self.opt_guid(c.strength);
        }
    }
    /// The flags as one byte's bits, then the clauses.
    pub(crate) fn evidence(&mut self, ev: &Evidence) {
        self.u8(ev.mfa_required as u8
            | (ev.mfa_by_claim as u8) << 1
            | (ev.compliant_device_required as u8) << 2
            | (ev.hybrid_join_required as u8) << 3
            | (ev.ca_details as u8) << 4);
        self.clauses(&ev.clauses);
    }
    pub(crate) fn counters(&mut self, c: &Counters) {
        for v in [
            c.sign_ins,
            c.successes,
            c.failures,
            c.policy_blocks,
            c.home_outbound_blocks,
            c.resource_inbound_blocks,
            c.mfa_required,
            c.mfa_by_claim,
            c.compliant_device_required,
            c.hybrid_join_required,
            c.ca_details_missing,
        ] {
            self.var(v);
        }
        self.opt_time(c.first_seen);
        self.opt_time(c.last_seen);
        self.clauses(&c.grant_clauses);
    }
    /// A text that may be the same as the one the record before it held
    /// in its place (`before`: `None` for no record before): then its flag
    /// alone ([`SAME_AS_BEFORE`]), else as [`Enc::opt_str`] writes it.
    pub(crate) fn text_after(&mut self, s: Option<&str>, before: Option<Option<&str>>) {
        match s {
            Some(s) if before == Some(Some(s)) => self.u8(SAME_AS_BEFORE),
            s => self.opt_str(s),
        }
    }
    pub(crate) fn row(&mut self, r: &ActivityRow) {
        self.row_after(r, None)
    }
    /// `r` written after `before`, the row before it in its run: a name
    /// the same as that row's is its flag alone (rows in order repeat
    /// their partner's, app's and resource's ids and names).
    pub(crate) fn row_after(&mut self, r: &ActivityRow, before: Option<&ActivityRow>) {
        self.u8(r.direction as u8);
        self.access(r.access_type);
        self.u128(r.partner_tenant_id.0);
        for name in ROW_NAME_FIELDS {
            self.text_after(name(r).as_deref(), before.map(|b| name(b).as_deref()));
        }
        self.opt_guid(r.app_owner_tenant_id);
        self.opt_guid(r.resource_owner_tenant_id);
        self.user_type(r.user_type);
        self.counters(&r.counters);
        self.opt_u64(r.distinct_users);
        self.opt_u64(r.distinct_apps);
        self.u32(r.by_epoch.len() as u32);
        for (epoch, c) in &r.by_epoch {
            self.u16(*epoch);
            self.counters(c);
        }
    }
}

impl super::Record for ActivityRow {
    fn write(&self, enc: &mut Enc) {
        enc.row(self);
    }
    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        dec.row()
    }
    fn write_after(&self, before: Option<&Self>, enc: &mut Enc) {
        enc.row_after(self, before);
    }
    fn read_after<R: BufRead>(dec: &mut Dec<R>, before: Option<&Self>) -> io::Result<Self> {
        dec.row_after(before)
    }
    fn text_bytes(&self) -> usize {
        self.text_bytes()
    }
}

/// Reads values back in the order [`Enc`] wrote them.
pub(crate) struct Dec<R> {
    input: R,
    /// The names of the row read last, slot by slot ([`Dec::row`]): rows
    /// read in order repeat their partner's, app's and resource's names
    /// run after run, and one copy shared is one allocation (and one free
    /// on the thread that writes the row) fewer per name.
    recent: [Option<Name>; ROW_NAMES],
    /// A string's bytes before they are checked as text.
    scratch: Vec<u8>,
    /// The day of the time read last ([`Dec::time`]): a row's first and
    /// last sign-in, and the rows of a run, mostly fall on a few days, and
    /// finding the date of a day number was some 250 instructions of the
    /// 380 a time took (two a row, on the merge's one thread).
    day: Option<(i64, NaiveDate)>,
}

/// The name columns of an [`ActivityRow`], in the order [`Enc::row`] writes
/// them (each a slot of [`Dec`]'s names read last).
const ROW_NAME_FIELDS: [fn(&ActivityRow) -> &Option<Name>; 7] = [
    |r| &r.partner_tenant_name,
    |r| &r.app_id,
    |r| &r.app_name,
    |r| &r.resource_id,
    |r| &r.resource_name,
    |r| &r.user_id,
    |r| &r.user_principal_name,
];
const ROW_NAMES: usize = ROW_NAME_FIELDS.len();

/// The flag of a text written as the same as the one the record before it
/// held in its place ([`Enc::text_after`]); 0 and 1 are an optional
/// value's none and some.
const SAME_AS_BEFORE: u8 = 2;

/// `bytes` as a name: `recent`'s copy when it holds the same text, else a
/// new one, which `recent` then holds.
fn same_or_new(recent: &mut Option<Name>, bytes: &[u8]) -> io::Result<Name> {
    if let Some(last) = recent.as_ref().filter(|last| last.as_bytes() == bytes) {
        return Ok(last.clone());
    }
    let name = Name::from(crate::model::text::utf8(bytes).map_err(|_| damaged("string"))?);
    *recent = Some(name.clone());
    Ok(name)
}

/// Appends the next `n` bytes of `input` to `out`: from the reader's buffer
/// when they are there whole (nearly always); else `take` then
/// `read_to_end`, which fills without zeroing first. A short read is a
/// record cut short.
fn read_n<R: BufRead>(input: &mut R, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let buffered = input.fill_buf()?;
    if let Some(bytes) = buffered.get(..n) {
        out.extend_from_slice(bytes);
        input.consume(n);
        return Ok(());
    }
    let before = out.len();
    input.take(n as u64).read_to_end(out)?;
    if out.len() - before != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The number of a whole LEB128 encoding ([`Enc::var`]); `None` for one
/// past 64 bits.
fn leb128(bytes: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        let bits = u64::from(b & 0x7f);
        // The tenth byte holds the 64th bit alone.
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
    }
    Some(v)
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("a {what} that was not written here"))
}

impl<R: BufRead> Dec<R> {
    pub(crate) fn new(input: R) -> Dec<R> {
        Dec { input, recent: Default::default(), scratch: Vec::new(), day: None }
    }
    /// Whether the input is at its end (between records).
    pub(crate) fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.input.fill_buf()?.is_empty())
    }
    /// The next record as `read` reads it, or `None` at the end of the input.
    pub(crate) fn unless_at_end<U>(
        &mut self,
        read: impl FnOnce(&mut Self) -> io::Result<U>,
    ) -> io::Result<Option<U>> {
        if self.at_end()? {
            return Ok(None);
        }
        read(self).map(Some)
    }
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        // Straight from the reader's buffer when they are there (nearly
        // always): `read_exact` was a call per flag and length read.
        if let Some(b) = self.input.fill_buf()?.first_chunk::<N>().copied() {
            self.input.consume(N);
            return Ok(b);
        }
        let mut b = [0u8; N];
        self.input.read_exact(&mut b)?;
        Ok(b)
    }
    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.bytes::<1>()?[0])
    }
    /// One of `all`, written as its position (a `u8`).
    pub(crate) fn one_of<T: Copy>(&mut self, all: &[T], what: &str) -> io::Result<T> {
        all.get(self.u8()? as usize).copied().ok_or_else(|| damaged(what))
    }
    pub(crate) fn u16(&mut self) -> io::Result<u16> {
        self.bytes().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        self.bytes().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        self.bytes().map(u64::from_le_bytes)
    }
    pub(crate) fn u128(&mut self) -> io::Result<u128> {
        self.bytes().map(u128::from_le_bytes)
    }
    /// A number [`Enc::var`] wrote: decoded in the reader's buffer when it
    /// holds the whole number (nearly always), else a byte at a time.
    pub(crate) fn var(&mut self) -> io::Result<u64> {
        let buffered = self.input.fill_buf()?;
        // Most numbers a record holds (its counters) are below 128: one
        // byte, taken as it is.
        if let Some(&b) = buffered.first().filter(|b| **b < 0x80) {
            self.input.consume(1);
            return Ok(b.into());
        }
        if let Some(end) = buffered.iter().take(10).position(|b| b & 0x80 == 0) {
            let v = leb128(&buffered[..=end]).ok_or_else(|| damaged("number"))?;
            self.input.consume(end + 1);
            return Ok(v);
        }
        let mut bytes = [0u8; 10];
        for n in 0..bytes.len() {
            bytes[n] = self.u8()?;
            if bytes[n] & 0x80 == 0 {
                return leb128(&bytes[..=n]).ok_or_else(|| damaged("number"));
            }
        }
        Err(damaged("number"))
    }
    fn flag(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(damaged("flag")),
        }
    }
    /// A string's bytes, not yet checked as text, into `scratch`.
    fn raw_text(&mut self) -> io::Result<()> {
        let n = self.u32()? as usize;
        self.raw_text_of(n)
    }
    /// [`Dec::raw_text`] once its length `n` is read.
    fn raw_text_of(&mut self, n: usize) -> io::Result<()> {
        self.scratch.clear();
        read_n(&mut self.input, n, &mut self.scratch)
    }
    /// Bytes [`Enc::bytes`] wrote, appended to what `out` holds.
    pub(crate) fn bytes_onto(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let n = self.u32()? as usize;
        read_n(&mut self.input, n, out)
    }
    /// Bytes [`Enc::flagged_bytes`] wrote, appended to what `out` holds;
    /// the result is their flag.
    pub(crate) fn flagged_bytes_onto(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let n = self.u32()?;
        read_n(&mut self.input, (n & !FLAG) as usize, out)?;
        Ok(n & FLAG != 0)
    }
    /// A string, read into the decoder's buffer: valid until the next read.
    pub(crate) fn text(&mut self) -> io::Result<&str> {
        self.raw_text()?;
        self.scratch_text()
    }
    /// The bytes `raw_text` read, as text.
    fn scratch_text(&self) -> io::Result<&str> {
        crate::model::text::utf8(&self.scratch).map_err(|_| damaged("string"))
    }
    pub(crate) fn string(&mut self) -> io::Result<String> {
        self.text().map(str::to_owned)
    }
    /// [`Dec::text`] of an optional string.
    pub(crate) fn opt_text(&mut self) -> io::Result<Option<&str>> {
        if self.flag()? {
            self.text().map(Some)
        } else {
            Ok(None)
        }
    }
    pub(crate) fn opt_string(&mut self) -> io::Result<Option<String>> {
        if self.flag()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }
    /// An optional name [`Enc::text_after`] wrote, `before` the row
    /// before's in its place (`None`: no row before).
    fn name_after(&mut self, slot: usize, before: Option<&Option<Name>>) -> io::Result<Option<Name>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.name(slot).map(Some),
            SAME_AS_BEFORE => before.cloned().flatten().map(Some).ok_or_else(|| damaged("name")),
            _ => Err(damaged("flag")),
        }
    }
    /// A text [`Enc::text_after`] wrote, `before` the record before's in
    /// its place (`None`: no record before).
    pub(crate) fn string_after(&mut self, before: Option<Option<&str>>) -> io::Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            SAME_AS_BEFORE => before.flatten().map(|s| Some(s.to_owned())).ok_or_else(|| damaged("text")),
            _ => Err(damaged("flag")),
        }
    }
    /// The name in slot `slot` of a row: the previous row's copy when
    /// it is the same text.
    pub(crate) fn opt_name(&mut self, slot: usize) -> io::Result<Option<Name>> {
        if !self.flag()? {
            return Ok(None);
        }
        self.name(slot).map(Some)
    }
    /// A text written with [`Enc::str`], as a name held in slot `slot`
    /// (below [`ROW_NAMES`]): the previous record's copy when it is the
    /// same text, as records read in order often repeat a name.
    pub(crate) fn name(&mut self, slot: usize) -> io::Result<Name> {
        let n = self.u32()? as usize;
        // Compared, and copied when new, straight from the reader's buffer
        // when the name is there whole (nearly always): this runs on the
        // merge's one thread, for every name of every row.
        if let Some(bytes) = self.input.fill_buf()?.get(..n) {
            let name = same_or_new(&mut self.recent[slot], bytes)?;
            self.input.consume(n);
            return Ok(name);
        }
        self.raw_text_of(n)?;
        same_or_new(&mut self.recent[slot], &self.scratch)
    }
    fn opt_u64(&mut self) -> io::Result<Option<u64>> {
        if self.flag()? {
            self.var().map(Some)
        } else {
            Ok(None)
        }
    }
    pub(crate) fn opt_guid(&mut self) -> io::Result<Option<Guid>> {
        if self.flag()? {
            self.u128().map(|v| Some(Guid(v)))
        } else {
            Ok(None)
        }
    }
    /// A time [`Enc::time`] wrote: what `DateTime::from_timestamp` makes
    /// of it, its day's date found once for a run of times on that day.
    pub(crate) fn time(&mut self) -> io::Result<DateTime<Utc>> {
        let secs = self.var()? as i64;
        let nanos = u32::try_from(self.var()?).map_err(|_| damaged("time"))?;
        let (day, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
        let date = match self.day {
            Some((d, date)) if d == day => date,
            _ => {
                let midnight = day.checked_mul(86_400).and_then(|s| DateTime::from_timestamp(s, 0));
                let date = midnight.ok_or_else(|| damaged("time"))?.date_naive();
                self.day = Some((day, date));
                date
            }
        };
        let time =
            NaiveTime::from_num_seconds_from_midnight_opt(of_day, nanos).ok_or_else(|| damaged("time"))?;
        Ok(date.and_time(time).and_utc())
    }
    pub(crate) fn opt_time(&mut self) -> io::Result<Option<DateTime<Utc>>> {
        if self.flag()? {
            self.time().map(Some)
        } else {
            Ok(None)
        }
    }
    pub(crate) fn access(&mut self) -> io::Result<AccessType> {
        self.one_of(&AccessType::ALL, "access type")
    }
    pub(crate) fn event_type(&mut self) -> io::Result<EventType> {
        self.one_of(&EventType::ALL, "event type")
    }
    pub(crate) fn user_type(&mut self) -> io::Result<Option<UserType>> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(UserType::Member),
            2 => Some(UserType::Guest),
            3 => Some(UserType::Unknown),
            _ => return Err(damaged("user type")),
        })
    }
    pub(crate) fn clauses(&mut self) -> io::Result<Vec<Clause>> {
        let n = self.var()?;
        (0..n)
            .map(|_| {
                Ok(Clause {
                    policy: self.opt_guid()?,
                    controls: Controls::from_bits(self.u8()?),
                    strength: self.opt_guid()?,
                })
            })
            .collect()
    }
    pub(crate) fn evidence(&mut self) -> io::Result<Evidence> {
        let flags = self.u8()?;
        Ok(Evidence {
            mfa_required: flags & 1 != 0,
            mfa_by_claim: flags & 2 != 0,
            compliant_device_required: flags & 4 != 0,
            hybrid_join_required: flags & 8 != 0,
            ca_details: flags & 16 != 0,
            clauses: self.clauses()?,
        })
    }
    pub(crate) fn counters(&mut self) -> io::Result<Counters> {
        let mut v = [0u64; 11];
        for x in &mut v {
            *x = self.var()?;
        }
        Ok(Counters {
            sign_ins: v[0],
            successes: v[1],
            failures: v[2],
            policy_blocks: v[3],
            home_outbound_blocks: v[4],
            resource_inbound_blocks: v[5],
            mfa_required: v[6],
            mfa_by_claim: v[7],
            compliant_device_required: v[8],
            hybrid_join_required: v[9],
            ca_details_missing: v[10],
            first_seen: self.opt_time()?,
            last_seen: self.opt_time()?,
            grant_clauses: self.clauses()?,
        })
    }
    pub(crate) fn row(&mut self) -> io::Result<ActivityRow> {
        self.row_after(None)
    }
    /// A row [`Enc::row_after`] wrote after `before`.
    pub(crate) fn row_after(&mut self, before: Option<&ActivityRow>) -> io::Result<ActivityRow> {
        let direction = match self.u8()? {
            0 => Direction::Inbound,
            1 => Direction::Outbound,
            _ => return Err(damaged("direction")),
        };
        let (access_type, partner_tenant_id) = (self.access()?, Guid(self.u128()?));
        let mut names: [Option<Name>; ROW_NAMES] = Default::default();
        for (slot, (name, field)) in names.iter_mut().zip(ROW_NAME_FIELDS).enumerate() {
            *name = self.name_after(slot, before.map(field))?;
        }
        let [partner_tenant_name, app_id, app_name, resource_id, resource_name, user_id, user_principal_name] =
            names;
        let mut row = ActivityRow {
            direction,
            access_type,
            partner_tenant_id,
            partner_tenant_name,
            app_id,
            app_name,
            app_owner_tenant_id: self.opt_guid()?,
            resource_id,
            resource_name,
            resource_owner_tenant_id: self.opt_guid()?,
            user_id,
            user_principal_name,
            user_type: self.user_type()?,
            counters: self.counters()?,
            distinct_users: self.opt_u64()?,
            distinct_apps: self.opt_u64()?,
            by_epoch: Vec::new(),
        };
        // Made to size (a list's first growth has room for four; most
        // groups are in one or two epochs), as far as a sane count goes.
        let epochs = self.u32()?;
        row.by_epoch.reserve_exact((epochs as usize).min(1 << 16));
        for _ in 0..epochs {
            let epoch = self.u16()?;
            row.by_epoch.push((epoch, self.counters()?));
        }
        Ok(row)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::runs::{Order, Record};

    /// `record` written and read back, for a test to compare with it.
    pub(crate) fn read_back<T: Record>(record: &T) -> T {
        let mut buf = Vec::new();
        record.write(&mut Enc(&mut buf));
        T::read(&mut Dec::new(&buf[..])).unwrap()
    }

    /// For every pair of `records`, the bytes of `order`'s key sort as
    /// `order` compares them: what merging runs as bytes relies on.
    pub(crate) fn keys_sort_as_compared<T: std::fmt::Debug>(records: &[T], order: Order<T>) {
        let key = |r: &T| {
            let mut k = Vec::new();
            (order.key)(r, &mut k);
            k
        };
        let keys: Vec<Vec<u8>> = records.iter().map(key).collect();
        for (a, ka) in records.iter().zip(&keys) {
            for (b, kb) in records.iter().zip(&keys) {
                assert_eq!(ka.cmp(kb), (order.cmp)(a, b), "{a:?} {b:?}");
            }
        }
    }

    /// A row with most kinds of value: hostile text, empty and absent
    /// strings, extreme ids, clauses, epochs.
    pub(crate) fn sample_row() -> ActivityRow {
        let t = DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap();
        let counters = Counters {
            sign_ins: 7,
            successes: 5,
            failures: 2,
            policy_blocks: 1,
            home_outbound_blocks: 1,
            mfa_by_claim: 3,
            first_seen: Some(t),
            last_seen: Some(t),
            grant_clauses: vec![Clause {
                policy: Some(Guid(9)),
                controls: Controls::MFA.union(Controls::AUTH_STRENGTH),
                strength: None,
            }],
            ..Counters::default()
        };
        ActivityRow {
            direction: Direction::Outbound,
            access_type: AccessType::B2bDirectConnect,
            partner_tenant_id: Guid(u128::MAX - 3),
            partner_tenant_name: Some("Contoso \u{1b}[31m".into()),
            app_id: Some("app".into()),
            app_name: None,
            app_owner_tenant_id: Some(Guid(4)),
            resource_id: Some("".into()),
            resource_name: Some("Résumé".into()),
            resource_owner_tenant_id: None,
            user_id: None,
            user_principal_name: Some("a@b".into()),
            user_type: Some(UserType::Guest),
            counters: counters.clone(),
            distinct_users: Some(3),
            distinct_apps: None,
            by_epoch: vec![(0, counters.clone()), (7, Counters::default())],
        }
    }

    #[test]
    fn numbers_and_times_of_every_size_read_back_as_written() {
        let numbers = [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, 1 << 63, u64::MAX - 1, u64::MAX];
        let times = [
            DateTime::from_timestamp(0, 0),
            DateTime::from_timestamp(-1, 999_999_999),
            DateTime::from_timestamp(1_790_000_000, 1_999_999_999),
            Some(DateTime::<Utc>::MIN_UTC),
            Some(DateTime::<Utc>::MAX_UTC),
        ];
        let mut buf = Vec::new();
        for n in numbers {
            Enc(&mut buf).var(n);
        }
        // 0-127 in a byte, every u64 in at most ten.
        assert_eq!(buf.len(), [1, 1, 1, 2, 2, 3, 5, 10, 10, 10].iter().sum::<usize>());
        for t in times {
            Enc(&mut buf).opt_time(t);
        }
        Enc(&mut buf).opt_time(None);
        // Read through a buffer of one byte too: a number split across refills.
        for capacity in [1, 4096] {
            let mut dec = Dec::new(std::io::BufReader::with_capacity(capacity, &buf[..]));
            for n in numbers {
                assert_eq!(dec.var().unwrap(), n);
            }
            for t in times {
                assert_eq!(dec.opt_time().unwrap(), t);
            }
            assert_eq!(dec.opt_time().unwrap(), None);
            assert!(dec.at_end().unwrap());
        }
        // Past 64 bits, or eleven bytes long: not written here.
        for bad in [vec![0xff; 9].into_iter().chain([0x02]).collect::<Vec<u8>>(), vec![0x80; 11]] {
            for capacity in [1, 4096] {
                let e = Dec::new(std::io::BufReader::with_capacity(capacity, &bad[..])).var().unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
            }
        }
    }

    proptest::proptest! {
        /// Times read one after another (the day found once for each run
        /// of them on a day) are what `DateTime::from_timestamp` makes of
        /// the numbers written, and a pair it makes nothing of is damaged.
        #[test]
        fn a_time_read_is_the_timestamp_written_whatever_came_before(
            pairs in proptest::collection::vec(
                (proptest::prop_oneof![
                    proptest::prelude::any::<i64>(),
                    -100_000i64..100_000,
                    1_700_000_000i64..1_700_300_000,
                    proptest::prelude::Just(i64::MIN),
                    proptest::prelude::Just(i64::MAX),
                ], proptest::prop_oneof![proptest::prelude::Just(0u32), 0u32..2_100_000_000, proptest::prelude::any::<u32>()]),
                1..12,
            )
        ) {
            let mut buf = Vec::new();
            for (secs, nanos) in &pairs {
                Enc(&mut buf).var(*secs as u64);
                Enc(&mut buf).var((*nanos).into());
            }
            let mut dec = Dec::new(&buf[..]);
            for (secs, nanos) in pairs {
                let read = dec.time();
                match DateTime::from_timestamp(secs, nanos) {
                    Some(want) => proptest::prop_assert_eq!(read.unwrap(), want),
                    None => {
                        proptest::prop_assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_after_one_with_the_same_names_is_written_without_them_and_read_back_whole() {
        let first = sample_row();
        let second = ActivityRow { user_principal_name: Some("c@d".into()), ..sample_row() };
        let (mut alone, mut after) = (Vec::new(), Vec::new());
        Enc(&mut alone).row(&second);
        Enc(&mut after).row_after(&second, Some(&first));
        let names = ["Contoso \u{1b}[31m", "app", "", "Résumé"].map(|n| n.len() + 4);
        assert_eq!(after.len(), alone.len() - names.iter().sum::<usize>());
        assert_eq!(Dec::new(&after[..]).row_after(Some(&first)).unwrap(), second);
        // Read without the row before, it is damaged, not a guess.
        assert!(Dec::new(&after[..]).row().is_err());
        assert_eq!(Dec::new(&alone[..]).row_after(Some(&first)).unwrap(), second);
    }

    #[test]
    fn a_row_written_and_read_back_is_the_same_row() {
        let row = sample_row();
        let mut buf = Vec::new();
        Enc(&mut buf).row(&row);
        Enc(&mut buf).row(&row);
        let mut dec = Dec::new(&buf[..]);
        assert_eq!(dec.row().unwrap(), row);
        assert_eq!(dec.row().unwrap(), row);
        assert!(dec.at_end().unwrap());
        // Rows whose names change from one to the next (the copies of the
        // previous row's names are reused only where the text is the same).
        let mut other = row.clone();
        other.partner_tenant_name = Some("Fabrikam".into());
        other.app_id = None;
        other.user_id = Some("u".into());
        let mut buf2 = Vec::new();
        for r in [&row, &other, &other, &row] {
            Enc(&mut buf2).row(r);
        }
        let mut dec = Dec::new(&buf2[..]);
        for r in [&row, &other, &other, &row] {
            assert_eq!(&dec.row().unwrap(), r);
        }
        // Through buffers so small that names lie across their ends, or
        // do not fit (read aside, not from the buffer).
        for capacity in [1, 2, 3, 5, 8, 13, 64] {
            let mut dec = Dec::new(std::io::BufReader::with_capacity(capacity, &buf2[..]));
            for r in [&row, &other, &other, &row] {
                assert_eq!(&dec.row().unwrap(), r, "buffer of {capacity}");
            }
            assert!(dec.at_end().unwrap());
        }
        // Text that is not UTF-8 was not written here.
        let mut bad = Vec::new();
        Enc(&mut bad).row(&row);
        let name = "Résumé".as_bytes();
        let at = bad.windows(name.len()).position(|w| w == name).unwrap();
        bad[at + 1] = 0xFF;
        assert!(Dec::new(&bad[..]).row().is_err());
        // A record cut short is an error, not a row.
        assert!(Dec::new(&buf[..buf.len() / 2 - 1]).row().and_then(|_| Dec::new(&buf[..3]).row()).is_err());
    }
}
