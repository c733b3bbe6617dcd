-- Nexmark q2: selection, the bids of every 123rd auction (the reference suite's MOD form).
CREATE STREAM nexmark_q2 AS
  SELECT auction, price FROM bid WHERE auction % 123 = 0 EMIT CHANGES;
