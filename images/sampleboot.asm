; sampleboot.asm - the boot program of the built-in sample disc (images/sample.iso).
;
; An El Torito no-emulation boot image (El Torito 1.0 section 2.2), loaded by
; the firmware at 07C0:0000 and entered with DL = the CD's BIOS drive number.
; It prints a banner, checks for the INT 13h extensions (EDD 3.0, AH=41h),
; finds /DATA.BIN in the ISO 9660 root directory (ECMA-119 8.4 and 9.1) by
; reading sectors with INT 13h AH=42h, reads the whole file the same way,
; adds it up as little-endian 32-bit words and compares the sum with the
; value images/builders.py stores in the info block below.  Then it prints
; the result and halts.
;
; Build: nasm -f bin -o images/sampleboot.bin images/sampleboot.asm
; (python -m images.builders sample does this when nasm is installed).

bits 16
org 0

SECTOR_BUF  equ 0x0900          ; segment of a 8 KiB sector buffer (0x9000)
FILE_BUF    equ 0x1000          ; segment of the file buffer (0x10000, 64 KiB)

start:
        jmp     short main
        nop
        times   8-($-$$) db 0
info:                           ; patched by images/builders.py
        db      "EMUINFO1"      ; offset 8: signature
expected:
        dd      0               ; offset 16: sum32 of DATA.BIN
filename:
        db      "DATA.BIN;1"    ; offset 20: the ISO 9660 name to look for
filename_len equ $-filename
ident:
        db      "EMU SAMPLE BOOT IMAGE", 0

main:
        cli
        mov     ax, 0x07C0
        mov     ds, ax
        xor     ax, ax
        mov     ss, ax
        mov     sp, 0x7C00
        sti
        cld
        mov     [drive], dl

        mov     si, msg_banner
        call    print

        mov     ah, 0x41                ; EDD installation check
        mov     bx, 0x55AA
        mov     dl, [drive]
        int     0x13
        jc      no_edd
        cmp     bx, 0xAA55
        jne     no_edd

        mov     eax, 16                 ; primary volume descriptor
        mov     cx, 1
        mov     bx, SECTOR_BUF
        call    read_sectors
        push    ds
        mov     ax, SECTOR_BUF
        mov     es, ax
        cmp     dword [es:1], "CD00"
        jne     not_iso
        mov     eax, [es:156+2]         ; root directory record: extent LBA
        mov     ecx, [es:156+10]        ; and data length
        pop     ds
        mov     [dir_lba], eax
        add     ecx, 2047
        shr     ecx, 11
        cmp     ecx, 4
        jbe     .dir_fits
        mov     ecx, 4
.dir_fits:
        mov     [dir_sectors], cx
        mov     bx, SECTOR_BUF
        call    read_sectors

        ; scan the directory records for the file name
        mov     ax, SECTOR_BUF
        mov     es, ax
        xor     di, di
        mov     ax, [dir_sectors]
        shl     ax, 11
        mov     [dir_end], ax
.next_record:
        cmp     di, [dir_end]
        jae     not_found
        mov     al, [es:di]
        test    al, al
        jnz     .have_record
        add     di, 2048                ; records never cross sectors: next sector
        and     di, 0xF800
        jmp     .next_record
.have_record:
        cmp     byte [es:di+32], filename_len
        jne     .skip
        push    di
        mov     si, filename
        lea     di, [di+33]
        mov     cx, filename_len
        repe    cmpsb
        pop     di
        je      found
.skip:
        movzx   ax, byte [es:di]
        add     di, ax
        jmp     .next_record

found:
        mov     eax, [es:di+2]
        mov     [file_lba], eax
        mov     ecx, [es:di+10]
        mov     [file_size], ecx
        cmp     ecx, 0x10000
        ja      too_big
        add     ecx, 2047
        shr     ecx, 11
        mov     bx, FILE_BUF
        call    read_sectors

        mov     ax, FILE_BUF            ; sum32 over the file
        mov     es, ax
        xor     edx, edx
        xor     si, si
        mov     ecx, [file_size]
        shr     ecx, 2
.sum:
        jecxz   .summed
        add     edx, [es:si]
        add     si, 4
        dec     ecx
        jmp     .sum
.summed:
        mov     [sum], edx

        mov     si, msg_file
        call    print
        mov     eax, [file_lba]
        call    print_hex
        mov     si, msg_bytes
        call    print
        mov     eax, [file_size]
        call    print_hex
        mov     si, msg_sum
        call    print
        mov     eax, [sum]
        call    print_hex
        mov     eax, [sum]
        cmp     eax, [expected]
        jne     .bad
        mov     si, msg_ok
        call    print
        jmp     halt
.bad:
        mov     si, msg_bad
        call    print
        mov     eax, [expected]
        call    print_hex
        mov     si, msg_crlf
        call    print
        jmp     halt

no_edd:
        mov     si, msg_no_edd
        jmp     fail
not_iso:
        pop     ds
        mov     si, msg_not_iso
        jmp     fail
not_found:
        mov     si, msg_not_found
        jmp     fail
too_big:
        mov     si, msg_too_big
fail:
        call    print
halt:
        mov     si, msg_halt
        call    print
        cli
.forever:
        hlt
        jmp     .forever

        times   510-($-$$) db 0
        db      0x55, 0xAA              ; the PC boot signature (not needed by El Torito)

; The whole 2048-byte image is loaded: routines and data follow the signature.

; read_sectors: EAX = LBA, CX = count, BX = destination segment (offset 0).
; Stops the boot with a message if the BIOS reports an error.
read_sectors:
        mov     [dap_lba], eax
        mov     [dap_count], cx
        mov     word [dap_off], 0
        mov     [dap_seg], bx
        mov     si, dap
        mov     dl, [drive]
        mov     ah, 0x42
        int     0x13
        jc      .error
        ret
.error:
        mov     si, msg_read_error
        jmp     fail

; print: DS:SI = NUL-terminated string, by INT 10h teletype.
print:
        lodsb
        test    al, al
        jz      .done
        mov     ah, 0x0E
        mov     bx, 0x0007
        int     0x10
        jmp     print
.done:
        ret

; print_hex: EAX as "0x" and eight hex digits.
print_hex:
        push    eax
        mov     si, msg_0x
        call    print
        pop     eax
        mov     cx, 8
.digit:
        rol     eax, 4
        push    eax
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     .put
        add     al, 'A' - '0' - 10
.put:
        mov     ah, 0x0E
        mov     bx, 0x0007
        int     0x10
        pop     eax
        loop    .digit
        ret

msg_banner      db "EMU SAMPLE BOOT: booted from the DVD drive by El Torito", 13, 10, 0
msg_file        db "DATA.BIN at LBA ", 0
msg_bytes       db ", ", 0
msg_sum         db " bytes, sum32 ", 0
msg_ok          db ": checksum OK", 13, 10, 0
msg_bad         db ": checksum MISMATCH, expected ", 0
msg_crlf        db 13, 10, 0
msg_0x          db "0x", 0
msg_no_edd      db "No INT 13h extensions", 13, 10, 0
msg_not_iso     db "No ISO 9660 volume", 13, 10, 0
msg_not_found   db "DATA.BIN not found", 13, 10, 0
msg_too_big     db "DATA.BIN too big", 13, 10, 0
msg_read_error  db "Disk read error", 13, 10, 0
msg_halt        db "Halted.", 13, 10, 0

align 4
dap:            db 16, 0
dap_count:      dw 0
dap_off:        dw 0
dap_seg:        dw 0
dap_lba:        dd 0, 0
drive:          db 0
align 4
dir_lba:        dd 0
dir_sectors:    dw 0
dir_end:        dw 0
file_lba:       dd 0
file_size:      dd 0
sum:            dd 0

        times   2048-($-$$) db 0
