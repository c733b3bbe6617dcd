//! The pageviews, users and orders presets. Pageviews is the Flink peer's input record for
//! record (same seed, same draws, same order); users and orders are what ksql-datagen's
//! presets of those names give: a table of users by id, and orders referring to them.

use std::fmt::Write;

use super::Generator;
use super::numpy_rng::NumpyRng;
use super::row::{Row, Schema};

const PAGES: [&str; 5] = ["home", "search", "product", "cart", "checkout"];
/// The peer draws its random numbers in chunks of this many records.
const PEER_CHUNK: u64 = 500_000;

static PAGEVIEWS: [Schema; 1] = [Schema { name: "pageviews", fields: &["USER_ID", "PAGE", "DWELL_MS", "TS"], key: 0 }];

/// `{"USER_ID":"u123","PAGE":"home","DWELL_MS":1234,"TS":1700000000000}`: users uniform
/// among `users`, pages among 5, dwell uniform in 0..=5000 ms, TS one millisecond apart.
pub struct Pageviews {
    rng: NumpyRng,
    users: u32,
    ts_start: i64,
    /// How many records there will be (the peer's last chunk is shorter), if known.
    total: Option<u64>,
    done: u64,
    chunk: [Vec<u32>; 3],
    at: usize,
}

impl Pageviews {
    pub fn new(seed: u32, users: u64, ts_start: i64, total: Option<u64>) -> Pageviews {
        let users = u32::try_from(users.clamp(1, u64::from(u32::MAX))).unwrap_or(u32::MAX);
        Pageviews { rng: NumpyRng::new(seed), users, ts_start, total, done: 0, chunk: [Vec::new(), Vec::new(), Vec::new()], at: 0 }
    }

    fn refill(&mut self) {
        let k = self.total.map_or(PEER_CHUNK, |t| PEER_CHUNK.min(t.saturating_sub(self.done)).max(1)) as usize;
        let [u, p, d] = &mut self.chunk;
        u.clear();
        p.clear();
        d.clear();
        u.extend((0..k).map(|_| self.rng.below(self.users)));
        p.extend((0..k).map(|_| self.rng.below(PAGES.len() as u32)));
        d.extend((0..k).map(|_| self.rng.below(5001)));
        self.at = 0;
    }
}

impl Generator for Pageviews {
    fn schemas(&self) -> &'static [Schema] {
        &PAGEVIEWS
    }

    fn next(&mut self, row: &mut Row) {
        if self.at >= self.chunk[0].len() {
            self.refill();
        }
        let (u, p, d) = (self.chunk[0][self.at], self.chunk[1][self.at], self.chunk[2][self.at]);
        self.at += 1;
        let ts = self.ts_start + self.done as i64;
        self.done += 1;
        row.reset(0, 4);
        let _ = write!(row.text(0), "u{u}");
        row.text(1).push_str(PAGES[p as usize]);
        row.int(2, i64::from(d));
        row.int(3, ts);
        row.timestamp = ts;
    }
}

const FIRST: [&str; 10] = ["Ada", "Bo", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ines", "Jon"];
const LAST: [&str; 10] = ["Alvarez", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen"];
const GENDERS: [&str; 3] = ["FEMALE", "MALE", "OTHER"];

static USERS: [Schema; 1] = [Schema { name: "users", fields: &["USER_ID", "NAME", "REGION", "GENDER", "REGISTERED_AT"], key: 0 }];

/// A table of users: every id `u0..u<users>` once, in order, then random updates of them.
pub struct Users {
    rng: NumpyRng,
    users: u64,
    ts_start: i64,
    done: u64,
}

impl Users {
    pub fn new(seed: u32, users: u64, ts_start: i64) -> Users {
        Users { rng: NumpyRng::new(seed), users: users.max(1), ts_start, done: 0 }
    }
}

impl Generator for Users {
    fn schemas(&self) -> &'static [Schema] {
        &USERS
    }

    fn next(&mut self, row: &mut Row) {
        let id = if self.done < self.users { self.done } else { self.rng.below_u64(self.users) };
        let ts = self.ts_start + self.done as i64;
        self.done += 1;
        row.reset(0, 5);
        let _ = write!(row.text(0), "u{id}");
        let (f, l) = (self.rng.below(10) as usize, self.rng.below(10) as usize);
        let _ = write!(row.text(1), "{} {}", FIRST[f], LAST[l]);
        let _ = write!(row.text(2), "region_{}", self.rng.below(10));
        row.text(3).push_str(GENDERS[self.rng.below(3) as usize]);
        row.int(4, ts);
        row.timestamp = ts;
    }
}

static ORDERS: [Schema; 1] = [Schema { name: "orders", fields: &["ORDER_ID", "CUSTOMER_ID", "PRODUCT_ID", "QUANTITY", "AMOUNT", "ORDER_TIME"], key: 0 }];

/// Orders by customers `u0..u<customers>` (the users preset's ids) of 1,000 products.
pub struct Orders {
    rng: NumpyRng,
    customers: u64,
    ts_start: i64,
    done: u64,
}

impl Orders {
    pub fn new(seed: u32, customers: u64, ts_start: i64) -> Orders {
        Orders { rng: NumpyRng::new(seed), customers: customers.max(1), ts_start, done: 0 }
    }
}

impl Generator for Orders {
    fn schemas(&self) -> &'static [Schema] {
        &ORDERS
    }

    fn next(&mut self, row: &mut Row) {
        let ts = self.ts_start + self.done as i64;
        row.reset(0, 6);
        let _ = write!(row.text(0), "o{}", self.done);
        self.done += 1;
        let _ = write!(row.text(1), "u{}", self.rng.below_u64(self.customers));
        let _ = write!(row.text(2), "p{}", self.rng.below(1000));
        let quantity = 1 + self.rng.below(5);
        row.int(3, i64::from(quantity));
        // Cents, 1.00 to 500.00 a unit.
        let cents = 100 + i64::from(self.rng.below(49_901));
        row.double(4, (cents * i64::from(quantity)) as f64 / 100.0);
        row.int(5, ts);
        row.timestamp = ts;
    }
}

#[cfg(test)]
mod tests {
    use super::super::row::{ValueFormat, encode_value};
    use super::*;

    fn lines(g: &mut dyn Generator, n: usize) -> Vec<String> {
        let mut row = Row::with_fields(1);
        (0..n)
            .map(|_| {
                g.next(&mut row);
                let mut out = Vec::new();
                encode_value(&g.schemas()[row.stream], &row, ValueFormat::Json, &mut out);
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    /// The first records `gen_pageviews.py 3 out` (the Flink peer's generator) writes.
    #[test]
    fn pageviews_are_the_peer_generators_records() {
        let mut g = Pageviews::new(42, 100_000, 1_700_000_000_000, Some(3));
        assert_eq!(
            lines(&mut g, 3),
            [
                r#"{"USER_ID":"u8925","PAGE":"product","DWELL_MS":429,"TS":1700000000000}"#,
                r#"{"USER_ID":"u77395","PAGE":"product","DWELL_MS":3487,"TS":1700000000001}"#,
                r#"{"USER_ID":"u65457","PAGE":"checkout","DWELL_MS":1007,"TS":1700000000002}"#,
            ]
        );
    }

    #[test]
    fn users_come_once_each_in_order_before_any_update() {
        let mut g = Users::new(1, 3, 0);
        let ids: Vec<String> = lines(&mut g, 3).iter().map(|l| l[12..16].to_string()).collect();
        assert_eq!(ids, [r#"u0","#, r#"u1","#, r#"u2","#]);
    }
}
