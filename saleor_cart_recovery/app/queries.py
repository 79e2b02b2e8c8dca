"""The GraphQL documents the App sends to Saleor (checked against Saleor 3.23's and 3.24-dev's
schema), and the batching limits they are built for.

Saleor refuses a document with more than ``GRAPHQL_ALIAS_COUNT_LIMIT`` aliases (100 by default),
more than ``GRAPHQL_MUTATION_COUNT_LIMIT`` mutations (4), or a cost above
``GRAPHQL_QUERY_MAX_COMPLEXITY`` (50000; each field costs 1, times the ``first`` of every
connection above it). Checkouts have no filter by token, so they are read by alias, one per cart;
everything else is one field with a ``where``/``ids`` argument.
"""

# Checkouts per document: a send batch (50) in one request, well under the alias limit.
CARTS_PER_REQUEST = 50
# Saleor's page size limit; larger lists are read in pages of this size.
PAGE = 100
# Orders per account read for the match by account address (see FIND_ORDERS); keeps the cost at
# about 100 × 20 × 14 ≈ 28000 of Saleor's 50000.
ORDERS_PER_ACCOUNT = 20
THUMBNAIL_SIZE = 256
# Saleor's query cost of one product read with CANDIDATE_FIELDS (9 on 3.23, measured with Saleor's
# own validator by tests/saleor/test_saleor_api.py), the cost we stay under, and the aliases one
# document may use (Saleor's limit is 100; the rest is headroom).
PRODUCT_COST = 9
MAX_COST = 45000
MAX_ALIASES = 90

_MEDIA = f"media {{ type url(size: {THUMBNAIL_SIZE}) }}"
_STOCK = "trackInventory preorder { endDate } stocks { warehouse { id } quantity quantityAllocated }"

CART_FIELDS = f"""
fragment CartFields on Checkout {{
  token email languageCode
  channel {{ slug currencyCode }}
  metadata {{ key value }} privateMetadata {{ key value }}
  user {{ firstName metadata {{ key value }} privateMetadata {{ key value }} }}
  shippingAddress {{ firstName country {{ code }} }}
  billingAddress {{ firstName country {{ code }} }}
  lines {{
    quantity isGift
    variant {{
      id name sku {_MEDIA}
      pricing {{ price {{ gross {{ amount }} }} }}
      product {{ name {_MEDIA} }}
    }}
  }}
}}"""


def load_carts(count: int) -> str:
    """``shop`` and one ``checkout(id: $cN)`` alias per cart. No price field of the checkout or its
    lines is read: each one re-prices an expired checkout (tax apps called)."""
    variables = ", ".join(f"$c{index}: ID!" for index in range(count))
    aliases = "\n".join(f"  c{index}: checkout(id: $c{index}) {{ ...CartFields }}" for index in range(count))
    return f"query LoadCarts({variables}) {{\n  shop {{ name }}\n{aliases}\n}}\n{CART_FIELDS}"


SAMPLE_CART = f"""
query SampleCart($channel: String!, $first: Int!) {{
  shop {{ name }}
  channel(slug: $channel) {{ currencyCode }}
  products(channel: $channel, first: $first, where: {{ isPublished: true }},
           sortBy: {{ field: MINIMAL_PRICE, direction: ASC }}) {{
    edges {{ node {{
      name {_MEDIA}
      variants {{
        id name sku {_MEDIA}
        channelListings {{ channel {{ slug }} price {{ amount }} }}
        pricing {{ price {{ gross {{ amount }} }} }}
      }}
    }} }}
  }}
}}"""

ORDER_FIELDS = """
fragment OrderFields on Order {
  id number checkoutId userEmail status created
  user { email }
  channel { slug }
  total { gross { amount currency } }
  totalRefunded { amount }
}"""

# Orders from the lookups' checkouts, or since the earliest ``since`` by one of their addresses
# (as the order's email, or its customer account's: an account's orders read through the account).
FIND_ORDERS = f"""
query FindOrders($where: OrderWhereInput!, $emails: [String!]!, $since: DateTime!, $after: String) {{
  orders(first: {PAGE}, after: $after, where: $where) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ ...OrderFields }} }}
  }}
  customers(first: {PAGE}, where: {{ email: {{ oneOf: $emails }} }}) {{
    edges {{ node {{
      orders(first: {ORDERS_PER_ACCOUNT}, where: {{ createdAt: {{ gte: $since }} }}) {{
        edges {{ node {{ ...OrderFields }} }}
      }}
    }} }}
  }}
}}
{ORDER_FIELDS}"""

STOCK_LEVELS = f"""
query StockLevels($channel: String!, $ids: [ID!]!) {{
  channel(slug: $channel) {{ warehouses {{ id }} }}
  productVariants(ids: $ids, first: {PAGE}) {{
    edges {{ node {{ id {_STOCK} }} }}
  }}
}}"""

# A product as the upsell shows it: its listing in the channel (published when, purchasable when),
# its variants' prices and stock there, its image.
CANDIDATE_FIELDS = f"""
fragment CandidateFields on Product {{
  id slug name {_MEDIA}
  channelListings {{ channel {{ slug }} isPublished publishedAt availableForPurchaseAt }}
  variants {{ id {_MEDIA} pricing {{ price {{ gross {{ amount }} }} }} {_STOCK} }}
}}"""

# The cart products' categories and collections (the first step of the related products).
UPSELL_SEEDS = f"""
query UpsellSeeds($ids: [ID!]!) {{
  productVariants(ids: $ids, first: {PAGE}) {{
    edges {{ node {{ id product {{ id category {{ id }} collections {{ id }} }} }} }}
  }}
}}"""


def groups_per_request(first: int) -> int:
    """How many categories or collections one RelatedProducts document may ask ``first`` products of."""
    return max(1, min(MAX_ALIASES, MAX_COST // (first * PRODUCT_COST + 1)))


def related_products(groups: int) -> str:
    """Per category or collection (``$gN``, ``$kN`` says which), its first ``$n`` visible products
    by name: one alias each, below the alias limit (callers split larger sets)."""
    variables = ", ".join(f"$g{index}: ProductWhereInput!" for index in range(groups))
    aliases = "\n".join(
        f"  g{index}: products(channel: $channel, first: $n, where: $g{index},"
        f" sortBy: {{ field: NAME, direction: ASC }}) {{ edges {{ node {{ ...CandidateFields }} }} }}"
        for index in range(groups)
    )
    header = f"query RelatedProducts($channel: String!, $n: Int!{', ' if groups else ''}{variables})"
    channel = "channel(slug: $channel) { slug currencyCode warehouses { id } }"
    return f"{header} {{\n  {channel}\n{aliases}\n}}\n{CANDIDATE_FIELDS}"


# Products named by the owner (IDs or slugs), whether or not visible: the answer says why not.
PRODUCTS_BY_REFERENCE = f"""
query ProductsByReference($channel: String!, $where: ProductWhereInput!) {{
  channel(slug: $channel) {{ slug currencyCode warehouses {{ id }} }}
  products(channel: $channel, first: {PAGE}, where: $where) {{
    edges {{ node {{ ...CandidateFields }} }}
  }}
}}
{CANDIDATE_FIELDS}"""

CHANNELS = "query Channels { channels { slug name currencyCode } }"

CHANNEL = "query Channel($slug: String!) { channel(slug: $slug) { id currencyCode } }"

APP_IDENTITY = "query AppIdentity { app { id permissions { code } } }"

CUSTOMER_EMAIL = "query CustomerEmail($id: ID!) { user(id: $id) { email isStaff } }"

VOUCHER_CREATE = """
mutation IssueVoucher($input: VoucherInput!) {
  voucherCreate(input: $input) { voucher { id } errors { field code message } }
}"""

# The channel listing and our mark: public (the one Saleor's voucher filter reads) and private (the
# one the plugin writes, so either host's cleanup finds the other's vouchers).
VOUCHER_LISTING = """
mutation ListVoucher($id: ID!, $input: VoucherChannelListingInput!, $mark: [MetadataInput!]!) {
  voucherChannelListingUpdate(id: $id, input: $input) { errors { field code message } }
  updateMetadata(id: $id, input: $mark) { errors { field code message } }
  updatePrivateMetadata(id: $id, input: $mark) { errors { field code message } }
}"""

VOUCHER_DELETE = """
mutation DeleteVouchers($ids: [ID!]!) {
  voucherBulkDelete(ids: $ids) { count errors { field code message } }
}"""

# Our vouchers (by the public mark: Saleor filters on public metadata only) with their end and use;
# which ended is decided here against the caller's clock, not Saleor's.
OUR_VOUCHERS = f"""
query OurVouchers($mark: String!, $after: String) {{
  vouchers(first: {PAGE}, after: $after, filter: {{ metadata: [{{ key: $mark }}] }}) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ id endDate used codes(first: {PAGE}) {{ edges {{ node {{ used }} }} }} }} }}
  }}
}}"""
