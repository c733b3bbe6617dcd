-- Nexmark q14: a projection with a CASE on the bid's hour and a character count.
-- Difference: the reference's count_char UDF is LEN(extra) - LEN(REPLACE(extra, 'c', '')).
CREATE STREAM nexmark_q14 AS
  SELECT auction, bidder, 0.908 * price AS price,
    CASE
      WHEN CAST(FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'HH', 'UTC') AS INT) >= 8
        AND CAST(FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'HH', 'UTC') AS INT) <= 18 THEN 'dayTime'
      WHEN CAST(FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'HH', 'UTC') AS INT) <= 6
        OR CAST(FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'HH', 'UTC') AS INT) >= 20 THEN 'nightTime'
      ELSE 'otherTime'
    END AS bid_time_type,
    date_time, extra,
    LEN(extra) - LEN(REPLACE(extra, 'c', '')) AS c_counts
  FROM bid
  WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
  EMIT CHANGES;
