-- Nexmark q0: pass-through of every bid (measures the source, decoding and the sink).
-- Difference: the result goes to a topic (ksqlDB has no blackhole sink).
CREATE STREAM nexmark_q0 AS
  SELECT auction, bidder, price, date_time, extra FROM bid EMIT CHANGES;
