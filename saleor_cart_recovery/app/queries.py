"""The GraphQL documents the App sends to Saleor (checked against Saleor 3.23's and 3.24-dev's
schema), and the batching limits they are built for.

Saleor refuses a document with more than ``GRAPHQL_ALIAS_COUNT_LIMIT`` aliases (100 by default),
more than ``GRAPHQL_MUTATION_COUNT_LIMIT`` mutations (4), or a cost above
``GRAPHQL_QUERY_MAX_COMPLEXITY`` (50000, as its cost map counts fields and pages), and a list of
documents in one HTTP request (``GRAPHQL_BATCH_MAX_COUNT`` is 1): reads are batched by aliases.
Checkouts have no filter by token, so they are read by alias, one per cart; orders by address by
alias too, one per address (see :func:`find_orders`); longer lists of IDs by alias, one page of IDs
each. Each document's largest form is checked with Saleor's own validators by
tests/saleor/test_saleor_api.py.
"""

# Checkouts per document: a send batch (50) in one request, well under the alias limit.
CARTS_PER_REQUEST = 50
# Saleor's page size limit; larger lists are read in pages of this size.
PAGE = 100
THUMBNAIL_SIZE = 256
# Saleor's query cost of one product read with CANDIDATE_FIELDS (9 on 3.23, measured with Saleor's
# own validator by tests/saleor/test_saleor_api.py), the cost we stay under, and the aliases one
# document may use (Saleor's limit is 100; the rest is headroom).
PRODUCT_COST = 9
# The same for one variant read for its stock (StockLevels: 1) and for its product's category
# and collections (UpsellSeeds: 4).
VARIANT_STOCK_COST = 1
VARIANT_SEED_COST = 4
MAX_COST = 45000
MAX_ALIASES = 90
# Addresses one FindOrders document asks about (one alias each, next to the orders by checkout).
ADDRESSES_PER_REQUEST = MAX_ALIASES - 1

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

# One order by its ID, as Saleor has it now (to confirm an order webhook). ``orders``, not
# ``order(id:)``: that one also answers draft orders and may re-price an unconfirmed order (saving
# it, calling a tax app if the channel uses one); ``orders`` answers no draft and calls no tax app
# (it may still re-price an unconfirmed order with stale prices under flat rates).
ORDER_BY_ID = f"""
query OrderById($id: ID!) {{
  orders(first: 1, where: {{ ids: [$id] }}) {{ edges {{ node {{ ...OrderFields }} }} }}
}}
{ORDER_FIELDS}"""


# What changed in Saleor at or after ``$since`` that can stop a cart (the order check right before
# a send, once the batch's orders were read in full: :meth:`.saleor_api.SaleorApi.find_orders_since`):
# the orders saved since (placed, completed from a draft, imported, their email edited) and the
# accounts (an email changed to a cart's), a page of each and whether there are more. Two indexed
# ranges on ``updated_at``, whatever the batch's addresses.
CHANGED_SINCE = f"""
query ChangedSince($since: DateTime!) {{
  orders(first: {PAGE}, where: {{ updatedAt: {{ gte: $since }} }}) {{
    pageInfo {{ hasNextPage }}
    edges {{ node {{ ...OrderFields }} }}
  }}
  customers(first: {PAGE}, where: {{ updatedAt: {{ gte: $since }} }}) {{
    pageInfo {{ hasNextPage }}
    edges {{ node {{ email }} }}
  }}
}}
{ORDER_FIELDS}"""


def find_orders(addresses: int, *, by_checkout: bool) -> str:
    """Per address ``$aN``, the newest order in channel ``$chN`` placed with that email or by an
    account with it (``aN``), and with ``by_checkout`` the orders ``$where`` names (``byCheckout``,
    paged by ``$after``): one alias each, callers keep to :data:`ADDRESSES_PER_REQUEST`.

    Saleor's ``where`` compares ``userEmail`` exactly, case included, and its ``search`` matches
    prefixes of words; only the (deprecated, still served by 3.24) ``filter: { customer }`` compares
    a valid email whole and case-insensitively (``iexact`` on the order's and the account's email,
    ``saleor/graphql/order/filters.py``), and it takes one value: hence one alias per address. The
    newest order is all the rule needs: when it is older than the cart's activity, so are the rest."""
    variables = [f"$a{i}: String!, $ch{i}: String!" for i in range(addresses)]
    fields = [
        f"  a{i}: orders(first: 1, channel: $ch{i}, filter: {{ customer: $a{i} }},"
        " sortBy: { field: CREATED_AT, direction: DESC }) { edges { node { ...OrderFields } } }"
        for i in range(addresses)
    ]
    if by_checkout:
        variables.insert(0, "$where: OrderWhereInput!, $after: String")
        fields.insert(
            0,
            f"  byCheckout: orders(first: {PAGE}, after: $after, where: $where) {{\n"
            "    pageInfo { hasNextPage endCursor }\n    edges { node { ...OrderFields } }\n  }",
        )
    header = f"query FindOrders({', '.join(variables)})" if variables else "query FindOrders"
    body = "\n".join(fields)
    return f"{header} {{\n{body}\n}}\n{ORDER_FIELDS}"


def _variant_pages(pages: int, fields: str) -> tuple[str, str]:
    """``$vN`` variables and ``vN: productVariants(ids: $vN)`` aliases, a page of IDs each."""
    variables = ", ".join(f"$v{index}: [ID!]!" for index in range(pages))
    aliases = "\n".join(
        f"  v{index}: productVariants(ids: $v{index}, first: {PAGE}) {{ edges {{ node {{ {fields} }} }} }}"
        for index in range(pages)
    )
    return variables, aliases


_VARIANT_STOCK = f"id {_STOCK}"
_VARIANT_SEED = "id product { id category { id } collections { id } }"


def stock_levels(pages: int) -> str:
    """The channel's warehouses and the stock of up to ``pages`` pages of variants (``$vN``)."""
    variables, aliases = _variant_pages(pages, _VARIANT_STOCK)
    return (
        f"query StockLevels($channel: String!, {variables}) {{\n"
        f"  channel(slug: $channel) {{ warehouses {{ id }} }}\n{aliases}\n}}"
    )


def upsell_seeds(pages: int) -> str:
    """The cart products' categories and collections (the first step of the related products),
    for up to ``pages`` pages of variants (``$vN``)."""
    variables, aliases = _variant_pages(pages, _VARIANT_SEED)
    return f"query UpsellSeeds({variables}) {{\n{aliases}\n}}"


# A product as the upsell shows it: its listing in the channel (published when, purchasable when),
# its variants' prices and stock there, its image.
CANDIDATE_FIELDS = f"""
fragment CandidateFields on Product {{
  id slug name {_MEDIA}
  channelListings {{ channel {{ slug }} isPublished publishedAt availableForPurchaseAt }}
  variants {{ id {_MEDIA} pricing {{ price {{ gross {{ amount }} }} }} {_STOCK} }}
}}"""


def aliases_within(alias_cost: int) -> int:
    """How many aliases of ``alias_cost`` each one document may hold (at least one)."""
    return max(1, min(MAX_ALIASES, MAX_COST // (alias_cost + 1)))


def groups_per_request(first: int) -> int:
    """How many categories or collections one RelatedProducts document may ask ``first`` products of."""
    return aliases_within(first * PRODUCT_COST)


def variant_pages_per_request(fields_cost: int) -> int:
    """How many pages of variant IDs one StockLevels or UpsellSeeds document may ask about."""
    return aliases_within(PAGE * fields_cost)


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

# Our mark, public (the one Saleor's voucher filter reads) and private (the one the plugin writes, so
# either host's cleanup finds the other's vouchers), then the channel listing. Not in voucherCreate:
# Saleor's VoucherInput takes no metadata. Saleor (graphql-core 2's ``execute_fields_serially``, in
# 3.23 as in 3.24-dev) runs a document's mutations one after another in the order written, each
# committed on its own, and each whatever the others answered: a voucher whose listing is refused is
# marked all the same, and one whose document stops halfway is marked but in no channel (usable
# nowhere, found by the cleanup). One is listed without the public mark only when updateMetadata
# answers with errors, the listing succeeds and the delete that follows fails: the cleanup keeps
# that voucher (it is in a channel), a valid single-use coupon whose code reached no one, and it
# expires.
VOUCHER_LISTING = """
mutation ListVoucher($id: ID!, $input: VoucherChannelListingInput!, $mark: [MetadataInput!]!) {
  updateMetadata(id: $id, input: $mark) { errors { field code message } }
  updatePrivateMetadata(id: $id, input: $mark) { errors { field code message } }
  voucherChannelListingUpdate(id: $id, input: $input) { errors { field code message } }
}"""

VOUCHER_DELETE = """
mutation DeleteVouchers($ids: [ID!]!) {
  voucherBulkDelete(ids: $ids) { count errors { field code message } }
}"""

# A page of the vouchers ``$filter`` selects (expired and unused on Saleor's count, with our public
# mark or our name: see ``SaleorApi.delete_expired_vouchers``) with what decides whether one is
# ours, ended and unused: name, marks, channels, end, use. Without ``channel`` Saleor reads every
# voucher, listed or not, and ``channelListings`` all of a voucher's channels. Which ended is
# decided against the caller's clock; Saleor's only narrows the selection.
OUR_VOUCHERS = f"""
query OurVouchers($filter: VoucherFilterInput!, $after: String) {{
  vouchers(first: {PAGE}, after: $after, filter: $filter) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{
      id name endDate used codes(first: {PAGE}) {{ edges {{ node {{ used }} }} }}
      metadata {{ key value }} privateMetadata {{ key value }} channelListings {{ id }}
    }} }}
  }}
}}"""
