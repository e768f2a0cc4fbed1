//! The binary records written to temporary folders when an analysis
//! outgrows memory (grouping's partitions, the sorted runs of
//! [`super`]): fixed-width little-endian numbers,
//! strings as a length and their bytes. Written and read by this process
//! only, so there is no version or schema; a record that cannot be read
//! back (the folder was cleaned up under us, the disk is full) is an error
//! naming the file, never a guess.

use std::io::{self, BufRead, Read};

use chrono::{DateTime, Utc};

use crate::model::activity::{ActivityRow, Counters, Name};
use crate::model::{AccessType, Clause, Controls, Direction, EventType, Evidence, Guid, UserType};

/// Appends values to a record being built.
pub(crate) struct Enc<'a>(pub(crate) &'a mut Vec<u8>);

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
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
    }
    /// Bytes as a length and the bytes, as [`Dec::bytes_onto`] reads them.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(&b[..b.len().min(u32::MAX as usize)]);
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
        self.u64(v.unwrap_or_default());
    }
    pub(crate) fn opt_guid(&mut self, g: Option<Guid>) {
        self.u8(g.is_some() as u8);
        self.u128(g.map_or(0, |g| g.0));
    }
    pub(crate) fn time(&mut self, t: DateTime<Utc>) {
        self.u64(t.timestamp() as u64);
        self.u32(t.timestamp_subsec_nanos());
    }
    pub(crate) fn opt_time(&mut self, t: Option<DateTime<Utc>>) {
        self.u8(t.is_some() as u8);
        self.time(t.unwrap_or_default());
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
        self.u32(clauses.len() as u32);
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
            self.u64(v);
        }
        self.opt_time(c.first_seen);
        self.opt_time(c.last_seen);
        self.clauses(&c.grant_clauses);
    }
    pub(crate) fn row(&mut self, r: &ActivityRow) {
        self.u8(r.direction as u8);
        self.access(r.access_type);
        self.u128(r.partner_tenant_id.0);
        self.opt_str(r.partner_tenant_name.as_deref());
        self.opt_str(r.app_id.as_deref());
        self.opt_str(r.app_name.as_deref());
        self.opt_guid(r.app_owner_tenant_id);
        self.opt_str(r.resource_id.as_deref());
        self.opt_str(r.resource_name.as_deref());
        self.opt_guid(r.resource_owner_tenant_id);
        self.opt_str(r.user_id.as_deref());
        self.opt_str(r.user_principal_name.as_deref());
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
}

/// The name columns of an [`ActivityRow`], in the order [`Enc::row`] writes them.
const ROW_NAMES: usize = 7;

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

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("a {what} that was not written here"))
}

impl<R: BufRead> Dec<R> {
    pub(crate) fn new(input: R) -> Dec<R> {
        Dec { input, recent: Default::default(), scratch: Vec::new() }
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
        let some = self.flag()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    pub(crate) fn opt_guid(&mut self) -> io::Result<Option<Guid>> {
        let some = self.flag()?;
        let v = self.u128()?;
        Ok(some.then_some(Guid(v)))
    }
    pub(crate) fn time(&mut self) -> io::Result<DateTime<Utc>> {
        let secs = self.u64()? as i64;
        let nanos = self.u32()?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| damaged("time"))
    }
    pub(crate) fn opt_time(&mut self) -> io::Result<Option<DateTime<Utc>>> {
        let some = self.flag()?;
        let t = self.time()?;
        Ok(some.then_some(t))
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
        let n = self.u32()?;
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
            *x = self.u64()?;
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
        let direction = match self.u8()? {
            0 => Direction::Inbound,
            1 => Direction::Outbound,
            _ => return Err(damaged("direction")),
        };
        let mut row = ActivityRow {
            direction,
            access_type: self.access()?,
            partner_tenant_id: Guid(self.u128()?),
            partner_tenant_name: self.opt_name(0)?,
            app_id: self.opt_name(1)?,
            app_name: self.opt_name(2)?,
            app_owner_tenant_id: self.opt_guid()?,
            resource_id: self.opt_name(3)?,
            resource_name: self.opt_name(4)?,
            resource_owner_tenant_id: self.opt_guid()?,
            user_id: self.opt_name(5)?,
            user_principal_name: self.opt_name(6)?,
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
