-- Nexmark q5: hot items, bids per auction over 10-second windows sliding every 2 seconds.
-- Difference: the count per auction and window only; keeping the auctions whose count is
-- the window's maximum needs a join of two aggregates on the window bounds, which the
-- dialect cannot express. EMIT FINAL: one result per window when it closes, as the
-- reference's window aggregation gives.
CREATE TABLE nexmark_q5 AS
  SELECT auction, COUNT(*) AS num
  FROM bid WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 4 SECONDS)
  GROUP BY auction EMIT FINAL;
