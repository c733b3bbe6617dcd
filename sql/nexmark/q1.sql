-- Nexmark q1: currency conversion, each bid's price from dollars to euros.
-- Difference: 0.908 is a DECIMAL literal as in the reference; the product is DECIMAL.
CREATE STREAM nexmark_q1 AS
  SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid EMIT CHANGES;
