# cmake -DFUZZER=... -DSEEDS=... -DDICTIONARY=... -DWORK_DIR=... -DSECONDS=... -P run_fuzzer.cmake
# Runs one libFuzzer harness for SECONDS from the seed corpus (read only; new inputs go to
# WORK_DIR/corpus) and fails, naming the kept input, on any finding.
foreach(var FUZZER SEEDS DICTIONARY WORK_DIR SECONDS)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK_DIR}/corpus ${WORK_DIR}/findings)
# -timeout: an input that takes 10 s is a hang; -rss_limit_mb: one that needs 2 GB is a finding too.
execute_process(COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                        -dict=${DICTIONARY} -artifact_prefix=${WORK_DIR}/findings/ ${WORK_DIR}/corpus ${SEEDS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" runs "${err}")
string(REGEX MATCH "cov: *[0-9]+ ft: *[0-9]+" coverage "${err}")
if(NOT rc EQUAL 0)
  file(GLOB findings ${WORK_DIR}/findings/*)
  message(FATAL_ERROR "fuzzer ${FUZZER} found a problem (exit ${rc}); the input is kept as ${findings}: "
                      "reproduce with `${FUZZER} <input>` and add it to the normal suite as a regression test\n${err}")
endif()
message(STATUS "${FUZZER}: ${runs}, ${coverage}, no findings")
