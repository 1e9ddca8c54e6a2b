"""The method: DACS self-training and RCCR's regional contrastive consistency."""
