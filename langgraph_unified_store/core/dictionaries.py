"""Preset dictionaries that stored bytes are deflated against.

Stored values depend on these exact bytes: never edit one. A better dictionary needs
a new prefix (``zd2:``), with the old one kept for reading.

Items (prefix ``zd1:``): a message serialized alone repeats its class path and field
names (150 to 300 bytes); plain zlib cannot shorten what it has not seen, so a 500-character message kept only
half its size and a short one almost none. Deflating against these bytes, which are
LangChain messages with empty fields plus the provider fields they commonly carry,
leaves mostly the text.

Checkpoints (prefix ``zc1:``): a checkpoint without its values is ~200 bytes of
``versions_seen`` and ``updated_channels`` in which only versions and node names vary;
against a skeleton of LangGraph's keys it stores in about half.
"""

from __future__ import annotations

from typing import Final

ITEM_DICTIONARY_V1: Final = (
    b'\xdc\x00B\xa9chatcmpl-\xa8lc_run--\xa4run-\xa6toolu_\xa4msg_\xa5call_\xb2sy'
    b'stem_fingerprint\xa3fp_\xabtoken_usage\xadprompt_tokens\xb1c'
    b'ompletion_tokens\xb5prompt_tokens_details\xb9completio'
    b'n_tokens_details\xadcached_tokens\xb0reasoning_tokens\xac'
    b'audio_tokens\xbaaccepted_prediction_tokens\xbarejected'
    b'_prediction_tokens\xb3input_token_details\xb4output_to'
    b'ken_details\xaacache_read\xaecache_creation\xa9reasoning\xa5'
    b'audio\xaemodel_provider\xa6openai\xa9anthropic\xa6google\xacser'
    b'vice_tier\xa7default\xa8logprobs\xa7refusal\xabstop_reason\xa8e'
    b'nd_turn\xa8tool_use\xadstop_sequence\xa5usage\xadfunction_ca'
    b'll\xa8function\xa9arguments\xb0tool_call_chunks\xa5index\xa4tex'
    b't\xa9image_url\xa3url\xabsource_type\xa6base64\xa9mime_type\xaelan'
    b'ggraph_step\xaelanggraph_node\xb2langgraph_triggers\xaela'
    b'nggraph_path\xb7langgraph_checkpoint_ns\xadcheckpoint_'
    b'ns\xabls_provider\xadls_model_name\xadls_model_type\xa4chat\xae'
    b'ls_temperature\xa5error\xa7success\xa8artifact\xa7example\xaato'
    b'ol_calls\xadfinish_reason\xaamodel_name\xc7\xdf\x05\x94\xbalangchain_'
    b'core.messages.ai\xaeAIMessageChunk\x8b\xa7content\xa0\xb1additi'
    b'onal_kwargs\x80\xb1response_metadata\x80\xa4type\xaeAIMessageCh'
    b'unk\xa4name\xc0\xa2id\xa0\xaatool_calls\x90\xb2invalid_tool_calls\x90\xaeus'
    b'age_metadata\xc0\xb0tool_call_chunks\x90\xaechunk_position\xc0\xb3'
    b'model_validate_json\xc7\xa9\x05\x94\xbclangchain_core.messages.'
    b'tool\xabToolMessage\x89\xa7content\xa0\xb1additional_kwargs\x80\xb1re'
    b'sponse_metadata\x80\xa4type\xa4tool\xa4name\xc0\xa2id\xa0\xactool_call_i'
    b'd\xa0\xa8artifact\xc0\xa6status\xa7success\xb3model_validate_json\xc7'
    b'\x88\x05\x94\xbelangchain_core.messages.system\xadSystemMessage'
    b'\x86\xa7content\xa0\xb1additional_kwargs\x80\xb1response_metadata\x80'
    b'\xa4type\xa6system\xa4name\xc0\xa2id\xa0\xb3model_validate_json\xc8\x01\x16\x05\x94\xba'
    b'langchain_core.messages.ai\xa9AIMessage\x89\xa7content\xa0\xb1a'
    b'dditional_kwargs\x80\xb1response_metadata\x82\xaamodel_name\xa0'
    b'\xadfinish_reason\xa4stop\xa4type\xa2ai\xa4name\xc0\xa2id\xa0\xaatool_calls'
    b'\x91\x84\xa4name\xa0\xa4args\x80\xa2id\xa0\xa4type\xa9tool_call\xb2invalid_tool_c'
    b'alls\x90\xaeusage_metadata\x83\xacinput_tokens\x00\xadoutput_token'
    b's\x00\xactotal_tokens\x00\xb3model_validate_json\xc7\xac\x05\x94\xbalangcha'
    b'in_core.messages.ai\xa9AIMessage\x89\xa7content\xa0\xb1addition'
    b'al_kwargs\x80\xb1response_metadata\x80\xa4type\xa2ai\xa4name\xc0\xa2id\xa0\xaa'
    b'tool_calls\x90\xb2invalid_tool_calls\x90\xaeusage_metadata\xc0\xb3'
    b'model_validate_json\xc7\x85\x05\x94\xbdlangchain_core.messages.'
    b'human\xacHumanMessage\x86\xa7content\xa0\xb1additional_kwargs\x80\xb1'
    b'response_metadata\x80\xa4type\xa5human\xa4name\xc0\xa2id\xa0\xb3model_va'
    b'lidate_json'
)

CHECKPOINT_DICTIONARY_V1: Final = (
    b'\xdc\x00\x15\xae__pregel_tasks\xad__scheduled__\xad__interrupt__\xaa_'
    b'_resume__\xa9__error__\xaa__return__\xac__previous__\xa7__en'
    b'd__\xa8__root__\xaabranch:to:\xaechannel_values\xadpending_s'
    b'ends\xa5tasks\xa5agent\xa5tools\xa5model\xa3llm\xa5human\xa9summarize'
    b'\xa8retrieve\xa8generate\x84\xa1v\x04\xa2ts\xd9 2026-01-01T00:00:00.0'
    b'00000+00:00\xadversions_seen\x84\xa9__input__\x80\xa9__start__\x81'
    b'\xa9__start__\xa9a1.000000\xa5agent\x81\xafbranch:to:agent\xa9a1.0'
    b'00000\xa5tools\x81\xafbranch:to:tools\xa9a1.000000\xb0updated_c'
    b'hannels\x92\xa8messages\xaabranch:to:'
)
