"""Who a lead is: account matching (`matching`), duplicate detection (`duplicates`), e-mail domains (`domains`),
address flags (`address_flags`) and the enrichment config, reference data and provider answers (`enrichment`).
"""
