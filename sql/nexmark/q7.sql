-- Nexmark q7: the highest bid of each 10-second tumbling window.
-- Difference: the windowed MAX per window (one group for all bids); the reference joins it
-- back to the bids to return the whole winning bid, a join of a stream with a windowed
-- aggregate that the dialect cannot express. EMIT FINAL: one result per window when it
-- closes.
CREATE TABLE nexmark_q7 AS
  SELECT 1 AS all_bids, MAX(price) AS maxprice, COUNT(*) AS bids
  FROM bid WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 4 SECONDS)
  GROUP BY 1 EMIT FINAL;
