-- Nexmark q17: per auction and day, bid counts by price band and price statistics.
-- Difference: COUNT(*) FILTER (WHERE ...) is written as SUM(CASE ... THEN 1 ELSE 0 END); the
-- two-column key is written as JSON (KAFKA keys hold one column).
CREATE TABLE nexmark_q17 WITH (key_format='JSON') AS
  SELECT auction, FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'yyyy-MM-dd', 'UTC') AS day,
    COUNT(*) AS total_bids,
    SUM(CASE WHEN price < 10000 THEN 1 ELSE 0 END) AS rank1_bids,
    SUM(CASE WHEN price >= 10000 AND price < 1000000 THEN 1 ELSE 0 END) AS rank2_bids,
    SUM(CASE WHEN price >= 1000000 THEN 1 ELSE 0 END) AS rank3_bids,
    MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price, SUM(price) AS sum_price
  FROM bid
  GROUP BY auction, FORMAT_TIMESTAMP(FROM_UNIXTIME(date_time), 'yyyy-MM-dd', 'UTC')
  EMIT CHANGES;
