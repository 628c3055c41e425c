"""What each adapter configuration key means, in one line, for the architecture and adapter pages.
The order is the order the pages list the keys in."""

KEY_DESCRIPTIONS = {
    "architecture": "The adapter method; bottleneck adapters when absent.",
    "mh_adapter": "Adapter after the multi-head attention block.",
    "output_adapter": "Adapter after the feed-forward block.",
    "reduction_factor": "Hidden size ÷ bottleneck size (a number, or per layer with a 'default').",
    "non_linearity": "Activation between the down- and up-projection.",
    "original_ln_before": "Apply the pre-trained Add & LayerNorm before the adapter.",
    "original_ln_after": "Apply the pre-trained Add & LayerNorm after the adapter.",
    "ln_before": "A new LayerNorm at the adapter's input.",
    "ln_after": "A new LayerNorm at the adapter's output.",
    "init_weights": "How the adapter's weights start: bert, mam_adapter or houlsby.",
    "is_parallel": "Run the adapter in parallel to the block instead of after it.",
    "scaling": "Factor on the adapter's output (a number, 'learned' or 'channel').",
    "use_gating": "A learned gate on the adapter's output.",
    "residual_before_ln": "Take the adapter's residual before the pre-trained LayerNorm (or 'post_add').",
    "adapter_residual_before_ln": "Add the residual before the adapter's own output LayerNorm.",
    "inv_adapter": "Invertible adapter on the embeddings: nice, glow or none.",
    "inv_adapter_reduction_factor": "Reduction factor of the invertible adapter.",
    "cross_adapter": "Adapter after the cross-attention block (encoder-decoder models).",
    "leave_out": "Layer ids that get no adapter.",
    "dropout": "Dropout probability inside the adapter.",
    "phm_layer": "Parameterised hypercomplex multiplication layers (Compacter).",
    "phm_dim": "Dimension of the hypercomplex multiplication.",
    "stochastic_depth": "Probability of skipping the adapter during training.",
    "init_weights_seed": "Seed for the adapter's weight initialisation.",
}
