-- Nexmark q11: user sessions, bids per bidder per session (10-second gap), one result per
-- session when it closes (EMIT FINAL), as the reference's session window gives.
CREATE TABLE nexmark_q11 AS
  SELECT bidder, COUNT(*) AS bid_count
  FROM bid WINDOW SESSION (10 SECONDS, GRACE PERIOD 4 SECONDS)
  GROUP BY bidder EMIT FINAL;
