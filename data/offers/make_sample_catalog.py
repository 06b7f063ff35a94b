#!/usr/bin/env python3
"""Writes sample-catalog.json: the offer library `swarm demo` publishes.

Each entry is a vendor document in the shape the vendor's public API returns it (taken
from save-offer's normaliser fixtures, which name the documentation page each follows)
plus the operator's policy for it. Dates are taken out of the documents: the demo's
members live in 1997-98 (CDNOW), and an offer starting in 2024 would not be in effect
for them. Run from the repository root: python3 data/offers/make_sample_catalog.py
"""
import copy
import json
from pathlib import Path

FIXTURES = Path("agents/save-offer/tests/fixtures/vendors")
DATES = {"starts_at", "ends_at", "created_at", "updated_at", "redeem_by", "created",
         "expiration_date", "start_date", "end_date", "createdDate", "lastUpdateDate",
         "expires_at", "valid_till", "startsAt", "endsAt", "created_datetime",
         "updated_datetime", "start", "end"}


def undated(value):
    if isinstance(value, dict):
        return {k: undated(v) for k, v in value.items() if k not in DATES}
    if isinstance(value, list):
        return [undated(v) for v in value]
    return value


def fixture(path):
    d = json.loads((FIXTURES / path).read_text())
    return d["vendor"], d.get("store_currency"), undated(d["document"]), d["documentation"]


def us(title, body, **extra):
    l = {"country": "US", "language": "en", "currency": "USD", "title": title, "body": body,
         "disclosure": "Offer terms at example.com/terms.", "cancellation_rule": "Cancel any time online or by phone.",
         "tax_inclusive": False, "tax_rate_bp": None, "return_policy": "Returns within 30 days."}
    l.update(extra)
    return [l]


def klaviyo_copy(new_id, name):
    vendor, store, doc, docs = fixture("klaviyo/template_education_content.json")
    doc = copy.deepcopy(doc)
    doc["data"]["id"] = new_id
    doc["data"]["attributes"]["name"] = name
    return vendor, store, doc, docs


ENTRIES = [
    (fixture("stripe/coupon_percent_repeating.json"), {
        "experiment": {"experiment_id": "cancel-discount", "variant_id": "v1", "arm": "percent",
                       "traffic_allocation_bp": 7000, "stratification": ["segment"],
                       "readout_cadence_hours": 24, "policy": "ThompsonSampling"},
        "caps": {"ltv_bound": True, "cogs_share_bp": 4500, "gross_margin_floor_bp": 1500},
        "localisations": us("Stay for less", "Keep your membership at a discount."),
        "compliance": {"claims": [{"text": "Save on your next three months", "substantiation_ref": "pricing-2024-07"}],
                       "changes_auto_renewal": True}}),
    (fixture("stripe/coupon_amount_once.json"), {
        "experiment": {"experiment_id": "cancel-discount", "variant_id": "v1", "arm": "amount",
                       "traffic_allocation_bp": 7000, "stratification": ["segment"],
                       "readout_cadence_hours": 24, "policy": "ThompsonSampling"},
        "caps": {"ltv_bound": True}}),
    (fixture("shopify/rest_price_rule_fixed_amount.json"), {
        "caps": {"budget": {"budget_id": "q3-winback", "ceiling_minor": None, "ceiling_redemptions": 150}},
        "stacking": {"vendor_conflict": True, "per_cart_cap_minor": 2500}}),
    (fixture("recharge/retention_strategy_skip_charge.json"), {
        "classification": {"retention_stages": ["Cancelling"]},
        "expiration": {"rolling_window_days": 30, "grace_days": 7, "suppress_on": ["OrderPlaced"]}}),
    (fixture("bold/cancel_offer_pause_subscription.json"), {
        "offer_type": "PauseTwoCycles",
        "eligibility": {"billing_frequencies": ["monthly", "quarterly"]}}),
    (fixture("bold/cancel_offer_modify_quantity.json"), {
        "eligibility": {"plan_tiers": ["plus", "premium"]},
        "compliance": {"changes_auto_renewal": True},
        "localisations": us("Switch to a smaller plan", "Keep what you use, pay less.")}),
    (fixture("shopify/rest_price_rule_buy_x_get_y.json"), {
        "fixed_cost_minor": 800,
        "localisations": us("A CD on us", "Your next order ships with a free CD.")}),
    (fixture("tango_card/catalog_item_fixed_value.json"), {
        "eligibility": {"ltv_deciles": [8, 9, 10]},
        "caps": {"budget": {"budget_id": "gift-cards", "ceiling_minor": 250000, "ceiling_redemptions": None},
                 "burn_rate": {"max_minor_per_day": 50000, "window_days": 7}},
        "localisations": us("A gift card, with thanks", "For staying with us.")}),
    (fixture("tremendous/product_charity.json"), {
        "fixed_cost_minor": 500,
        "classification": {"reason_clusters": ["Price", "FinancialHardship", "NotUsingEnough", "Other"]}}),
    # Content a member reads in the app, or else by email: in-app goes out only for
    # offers that name it. It teaches a member who is drifting, not one on the cancel
    # page: there the save flow routes by reason (below), as operators' cancel flows do.
    # The contact offers share ltv's one counterfactual for contact (tier_promotion), so
    # where two are eligible the cheaper always wins; routing decides which of them
    # compete where, and value against cost decides among what is left.
    (fixture("klaviyo/template_education_content.json"), {
        "fixed_cost_minor": 20, "channels": ["InApp", "Email"],
        "classification": {"retention_stages": ["Onboarding", "Active", "AtRisk"]}}),
    (klaviyo_copy("TmplReplenish", "Time to restock"), {
        "offer_type": "ReplenishmentReminder", "fixed_cost_minor": 10, "channels": ["Push", "InApp", "Email"],
        "classification": {"reason_clusters": ["TooMuchProduct", "NotUsingEnough", "Temporary"]}}),
    # The cancel page already asks why; the survey goes to members drifting or gone.
    (fixture("klaviyo/template_win_back_survey.json"), {
        "fixed_cost_minor": 30,
        "classification": {"retention_stages": ["AtRisk", "Lapsed", "WinBack"]}}),
    (klaviyo_copy("TmplCsmCall", "Call from your success manager"), {
        "offer_type": "CustomerSuccessCall", "fixed_cost_minor": 1500,
        "eligibility": {"ltv_deciles": [6, 7, 8, 9, 10]},
        "expiration": {"redemption_cap": 200}}),
    (klaviyo_copy("TmplAccountManager", "Your account manager"), {
        "offer_type": "AccountManagerOutreach", "fixed_cost_minor": 3000,
        "eligibility": {"ltv_deciles": [9, 10]}}),
    # A member leaving over service, quality or delivery is called back by a person.
    (klaviyo_copy("TmplSpecialist", "Talk to a retention specialist"), {
        "offer_type": "RetentionSpecialistCall", "fixed_cost_minor": 2500,
        "eligibility": {"reason_clusters": ["ServiceExperience", "ProductQuality", "ShippingDelivery"]},
        "expiration": {"cohort_cap": 60}}),
    (fixture("voucherify/discount_voucher_percent.json"), {
        "eligibility": {"excluded_states": ["US-NY"]},
        "stacking": {"rule": "Exclusive"},
        "caps": {"margin_bound_bp": 1000}}),
]


def vendor_offer_id(vendor, doc):
    if vendor == "klaviyo":
        return doc["data"]["id"]
    if vendor == "tango_card":
        return doc["items"][0]["utid"]
    for key in ("id", "code"):
        if key in doc:
            return str(doc[key])
    raise SystemExit(f"no id in {vendor} document")


entries = []
for (vendor, store, doc, docs), policy in ENTRIES:
    entries.append({"vendor": vendor, "vendor_offer_id": vendor_offer_id(vendor, doc),
                    "store_currency": store or "USD", "documentation": docs,
                    "document": doc, "policy": policy})
Path("data/offers/sample-catalog.json").write_text(json.dumps(entries, indent=1) + "\n")
print(f"{len(entries)} offers from {len({e['vendor'] for e in entries})} vendors")
