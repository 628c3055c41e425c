"""The transformers release the library runs on (4.57 or 5.x).

transformers 5 changed the forwards of some Transformer layers that the model families replace: the cache
argument is ``cache`` (4.57: ``past_key_values``), head masks and ``output_attentions`` are gone (attention
weights are recorded by hooks), further arguments arrive as ``**kwargs``, and a layer returns its hidden
states as a tensor where 4.57 returned a tuple. Families whose layer forwards cannot be written once for both
(GPT-2, DistilBERT, BART, mBART) wrap one body in the signature of the running release, chosen by this flag."""

import transformers

TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5
