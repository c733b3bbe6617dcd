-- Nexmark q8: people who opened an auction within 10 seconds of registering.
-- Difference: a stream-stream join of persons and auctions on id = seller WITHIN 10
-- SECONDS (a sliding interval) instead of two tumbling windows joined on their bounds.
CREATE STREAM nexmark_q8 AS
  SELECT p.id AS id, p.name AS name, a.date_time AS auction_time
  FROM person p JOIN auction a WITHIN 10 SECONDS ON p.id = a.seller
  EMIT CHANGES;
