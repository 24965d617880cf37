# cmake -DSCRIPT=<script> -DOUTDIR=<dir> -DFILES=<a,b,...> -P this file:
# run the script (it prints the directory it prepared in the download
# cache) and copy FILES from there into OUTDIR.  See linux-headers.cmake.
execute_process(COMMAND sh ${SCRIPT}
                OUTPUT_VARIABLE dir ERROR_VARIABLE err RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT IS_DIRECTORY "${dir}")
  message(FATAL_ERROR "${SCRIPT} failed:\n${err}"
          "The tests need linux-source-6.12, fetched by version with "
          "apt-get download; or configure with -DDIRTYD_TESTS=OFF.")
endif()
string(REPLACE "," ";" files "${FILES}")
foreach(f ${files})
  get_filename_component(sub ${OUTDIR}/${f} DIRECTORY)
  file(MAKE_DIRECTORY ${sub})
  file(COPY_FILE ${dir}/${f} ${OUTDIR}/${f})
endforeach()
