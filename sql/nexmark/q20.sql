-- Nexmark q20: bids with their auction's details, for auctions of category 10.
-- Difference: auctions are a TABLE by id and the join a stream-table lookup: a bid for an
-- auction not there yet (Nexmark's ids run up to 10 ahead) finds none.
CREATE STREAM nexmark_q20 AS
  SELECT b.auction AS auction, b.bidder AS bidder, b.price AS price, b.channel AS channel, b.url AS url,
    b.date_time AS bid_date_time, b.extra AS bid_extra,
    a.item_name AS item_name, a.description AS description, a.initial_bid AS initial_bid, a.reserve AS reserve,
    a.date_time AS auction_date_time, a.expires AS expires, a.seller AS seller, a.category AS category, a.extra AS auction_extra
  FROM bid b JOIN auction_table a ON b.auction = a.id
  WHERE a.category = 10
  EMIT CHANGES;
