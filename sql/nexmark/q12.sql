-- Nexmark q12: bids per bidder per 10-second window.
-- Difference: the reference uses processing-time windows; windows here are on the
-- record's time (DATE_TIME), so the result does not depend on how fast the query runs;
-- one result per window when it closes (EMIT FINAL).
CREATE TABLE nexmark_q12 AS
  SELECT bidder, COUNT(*) AS bid_count
  FROM bid WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 4 SECONDS)
  GROUP BY bidder EMIT FINAL;
